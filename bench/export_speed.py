"""PyTorch fp32 against ONNX fp32 and ONNX int8: dev accuracy and prediction throughput, one run.

    python bench/export_speed.py --run runs/sst2-minilm-3k --rounds 5

Exports the run (`tunesmith export --format onnx`, with and without `--quantize int8`) unless
the exports are already beside it, then scores the dev file with each (`Predictor.evaluate`) and
times `Predictor.predict` on every dev sentence at batch 32, and on the first 200 at batch 1,
each batch through the three backends back to back in rotating order, so that a shared
machine's load (which changes by the second) falls on all alike. Each ratio is the median
over rounds of that round's export texts/s over PyTorch's.
Writes export_speed.json and export_speed.md to --output-dir.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2" / "dev.tsv"
BACKENDS = ("pytorch_fp32", "onnx_fp32", "onnx_int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished SST-2 run folder")
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--single", type=int, default=200, help="texts timed one at a time (batch 1)")
    parser.add_argument("--threads", type=int, help="threads for torch and onnxruntime alike (default: all cores)")
    parser.add_argument("--output-dir", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import tunesmith
    from tunesmith.export.runtime import load_export

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = exports(args.run)
    predictors = {
        name: tunesmith.load(path) if name == "pytorch_fp32" else load_export(path, args.threads)
        for name, path in paths.items()
    }
    texts = dev_texts(args.dev)
    accuracy = {name: predictor.evaluate(args.dev)["accuracy"] for name, predictor in predictors.items()}
    rounds: list[dict[str, dict[str, float]]] = []
    for index in range(args.rounds):
        rounds.append(interleaved(predictors, texts, args.batch_size, args.single))
        print(f"round {index + 1}: " + ", ".join(f"{n} {r['texts_per_s']:.1f}/s" for n, r in rounds[-1].items()))
    summary = summarise(rounds, accuracy)
    summary["setup"] = {
        "run": str(args.run),
        "dev": str(args.dev),
        "dev_texts": len(texts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg(),
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "export_speed.json").write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2))
    table = markdown(summary)
    (args.output_dir / "export_speed.md").write_text(table)
    print(table)


def exports(run: Path) -> dict[str, Path]:
    """The run and its two ONNX exports, made with `tunesmith export` where missing."""
    from tunesmith.export import export_run
    from tunesmith.export.folder import default_output, is_export

    paths = {"pytorch_fp32": run}
    for name, quantize in (("onnx_fp32", None), ("onnx_int8", "int8")):
        path = default_output(run, "onnx", quantize)
        if not is_export(path):
            export_run(run, "onnx", quantize, path)
        paths[name] = path
    return paths


def dev_texts(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["sentence"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def interleaved(predictors: dict[str, Any], texts: list[str], batch_size: int, single: int) -> dict[str, dict]:
    """One round: each batch of `batch_size` dev texts (and each of the first `single` texts alone) goes
    through every backend back to back, in rotating order, so that a shared machine's load, which
    changes by the second, falls on all of them alike. Seconds are summed per backend."""
    for predictor in predictors.values():
        predictor.predict(texts[:batch_size], batch_size=batch_size)  # warm-up
    names = list(predictors)
    seconds = {name: {"batched": 0.0, "single": []} for name in names}
    chunks = [texts[start : start + batch_size] for start in range(0, len(texts), batch_size)]
    for index, chunk in enumerate(chunks + [[text] for text in texts[:single]]):
        kind = "batched" if index < len(chunks) else "single"
        for name in names[index % len(names) :] + names[: index % len(names)]:
            began = time.perf_counter()
            predictors[name].predict(chunk, batch_size=batch_size)
            taken = time.perf_counter() - began
            if kind == "batched":
                seconds[name]["batched"] += taken
            else:
                seconds[name]["single"].append(taken)
    result = {}
    for name in names:
        calls = sorted(seconds[name]["single"])
        result[name] = {
            "texts_per_s": len(texts) / seconds[name]["batched"],
            "single_texts_per_s": len(calls) / sum(calls),
            "single_p50_ms": 1000 * calls[len(calls) // 2],
            "single_p95_ms": 1000 * calls[int(len(calls) * 0.95)],
        }
    return result


def summarise(rounds: list[dict[str, dict[str, float]]], accuracy: dict[str, float]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in BACKENDS:
        ratios = [r[name]["texts_per_s"] / r["pytorch_fp32"]["texts_per_s"] for r in rounds]
        summary[name] = {
            "dev_accuracy": accuracy[name],
            "accuracy_lost_points": 100 * (accuracy["pytorch_fp32"] - accuracy[name]),
            "texts_per_s_median": statistics.median(r[name]["texts_per_s"] for r in rounds),
            "throughput_ratio_median": statistics.median(ratios),
            "throughput_ratio_range": [min(ratios), max(ratios)],
            "single_p50_ms_median": statistics.median(r[name]["single_p50_ms"] for r in rounds),
            "single_ratio_median": statistics.median(
                r[name]["single_texts_per_s"] / r["pytorch_fp32"]["single_texts_per_s"] for r in rounds
            ),
        }
    return summary


def markdown(summary: dict[str, Any]) -> str:
    setup = summary["setup"]
    lines = [
        f"SST-2 dev ({setup['dev_texts']} sentences), batch {setup['batch_size']}, {setup['rounds']} rounds, "
        f"{setup['cpus']} CPUs, {setup['threads']} threads for torch and onnxruntime alike, "
        f"load average after {setup['load_average_after'][0]:.1f}",
        "",
        "| backend | dev accuracy | points lost | texts/s (batch 32) | × PyTorch (min-max) | batch 1 p50 ms | "
        "× PyTorch (batch 1) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in BACKENDS:
        row = summary[name]
        low, high = row["throughput_ratio_range"]
        lines.append(
            f"| {name} | {row['dev_accuracy']:.4f} | {row['accuracy_lost_points']:.2f} | "
            f"{row['texts_per_s_median']:.1f} | {row['throughput_ratio_median']:.2f} ({low:.2f}-{high:.2f}) | "
            f"{row['single_p50_ms_median']:.1f} | {row['single_ratio_median']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
