"""`tunesmith serve RUN|EXPORT`: a finished run (PyTorch) or an export (ONNX or hf) over HTTP.

settings.py checks the flags and binds the port, app.py is the FastAPI app, batcher.py groups
concurrent requests into model calls, metrics.py counts for /metrics, page.py is GET /.
uvicorn runs the app; on SIGTERM (or Ctrl-C) it stops taking connections, lets the requests
in flight finish (up to `Settings.graceful_s`), and only then the batcher stops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.serve.settings import Settings


def load_model(path: Path, threads: int | None) -> Any:
    """The predictor for a run or an export, using `threads` threads for the model."""
    from tunesmith.export.folder import is_export

    if is_export(path):
        from tunesmith.export.runtime import load_export

        if threads:
            import torch

            torch.set_num_threads(threads)  # an hf export runs through PyTorch
        return load_export(path, threads)
    from tunesmith.predictor import load

    if threads:
        import torch

        torch.set_num_threads(threads)
    return load(path)


def describe(path: Path, predictor: Any, settings: Settings) -> dict[str, Any]:
    """What GET /info says: the model, its task and labels, how it scored, and the server's limits."""
    from tunesmith.export.folder import EXPORT_FILE, PARITY_FILE, is_export

    backend = "pytorch"
    scores: dict[str, Any] = {}
    if is_export(path):
        manifest = json.loads((path / EXPORT_FILE).read_text(encoding="utf-8"))
        backend = manifest["format"] + (f"-{manifest['quantize']}" if manifest.get("quantize") else "")
        parity = json.loads((path / PARITY_FILE).read_text(encoding="utf-8"))
        scores = {parity["metric"]: parity["metric_after"], "examples": parity["examples"]}
    elif (path / "metrics.json").is_file():
        validation = json.loads((path / "metrics.json").read_text(encoding="utf-8")).get("validation", {})
        scores = {key: value for key, value in validation.items() if isinstance(value, (int, float))}
    config = predictor.config
    return {
        "model": path.name,
        "backbone": config.model,
        "task": config.task,
        "backend": backend,
        "labels": list(predictor.names),
        "sentence_pairs": config.data.text_pair_column is not None,
        "max_length": config.training.max_length,
        "validation_metrics": scores,
        "limits": {"max_texts": settings.max_texts, "max_chars": settings.max_chars, "max_queue": settings.max_queue},
        "batching": {"on": settings.batching, "max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
    }


def serve(path: Path, settings: Settings) -> None:
    import uvicorn

    from tunesmith.serve.app import create_app

    predictor = load_model(path, settings.threads)
    app = create_app(predictor, settings, describe(path, predictor, settings))
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_s,
    )
    address = f"http://{settings.host}:{settings.port}"
    print(f"Serving {path} on {address} (docs at {address}/docs; Ctrl-C or SIGTERM stops it)", flush=True)
    sockets = [settings.sock] if settings.sock is not None else None
    # uvicorn re-raises SIGTERM/SIGINT once the requests in flight are answered: the exit status says which.
    uvicorn.Server(config).run(sockets=sockets)
