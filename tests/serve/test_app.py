"""The REST app's answers: auth, limits, malformed bodies, a full queue, batching, metrics, the page.

A stand-in predictor keeps these fast (and lets a test hold the model busy); one test serves a
real trained run.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tunesmith.config import RunConfig
from tunesmith.serve import describe
from tunesmith.serve.app import create_app
from tunesmith.serve.settings import Settings

KEY = "s3cret-key"
# Bounds every wait in these tests: a hang fails, it does not stall the suite.
WAIT_S = 10


class StandIn:
    """A predictor that labels by length, records its calls, and can be held busy."""

    def __init__(self, pairs: bool = False) -> None:
        data = {"train": "x.csv", "text_pair_column": "second" if pairs else None}
        self.config = RunConfig.model_validate({"data": data})
        self.names = ["short", "long"]
        self.calls: list[int] = []
        self.pairs: list[list[str] | None] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def predict(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64) -> list[dict[str, Any]]:
        self.entered.set()
        assert self.release.wait(WAIT_S)
        self.calls.append(len(texts))
        self.pairs.append(pairs)
        return [{"label": "long" if len(text) > 10 else "short", "score": 1.0} for text in texts]


def client_for(predictor: StandIn, **settings: Any) -> TestClient:
    return TestClient(
        create_app(predictor, Settings(**settings), {"task": "classification"}), raise_server_exceptions=False
    )


@pytest.fixture
def standin() -> StandIn:
    return StandIn()


@pytest.fixture
def client(standin: StandIn) -> Iterator[TestClient]:
    with client_for(standin, max_texts=4, max_chars=50) as client:
        yield client


def test_predict_answers_one_result_per_text_in_order(client: TestClient) -> None:
    response = client.post("/predict", json={"texts": ["tiny", "a rather longer text", "hi"]})
    assert response.status_code == 200
    assert [row["label"] for row in response.json()["predictions"]] == ["short", "long", "short"]
    assert client.post("/predict", json={"text": "a rather longer text"}).json()["predictions"][0]["label"] == "long"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe\x00", 400),
        (b"", 400),
        (b"[1, 2]", 422),
        (b'"a string"', 422),
        (b"{}", 422),
        (b'{"text": 5}', 422),
        (b'{"texts": "not a list"}', 422),
        (b'{"texts": [1, 2]}', 422),
        (b'{"text": "a", "texts": ["b"]}', 422),
        (b'{"text": "a", "extra": 1}', 422),
        (b'{"texts": []}', 422),
        (b'{"text": "   "}', 422),
        (b'{"text": "\\u200b"}', 422),
        (b'{"text": "a", "text_pair": "b"}', 422),  # pairs to a model trained on single texts
        (b'{"texts": ["a", "b", "c", "d", "e"]}', 413),
        (json.dumps({"text": "x" * 51}).encode(), 413),
    ],
)
def test_malformed_and_oversized_requests_are_4xx_with_a_message_never_5xx(
    client: TestClient, body: bytes, status: int
) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    message = response.json()["error"]
    assert message and "Traceback" not in message and 'File "' not in message


def test_a_body_beyond_the_byte_limit_is_413_before_it_is_parsed(standin: StandIn) -> None:
    with client_for(standin, max_texts=1, max_chars=10) as client:
        limit = Settings(max_texts=1, max_chars=10).max_body_bytes
        response = client.post("/predict", content=b"[" * (limit + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert standin.calls == []


def test_the_api_key_is_required_where_configured(standin: StandIn) -> None:
    with client_for(standin, api_key=KEY) as client:
        for path in ("/info", "/metrics"):
            assert client.get(path).status_code == 401
        assert client.post("/predict", json={"text": "hello"}).status_code == 401
        wrong = client.post("/predict", json={"text": "hello"}, headers={"X-API-Key": KEY + "x"})
        assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["error"]
        assert client.post("/predict", json={"text": "hello"}, headers={"X-API-Key": KEY}).status_code == 200
        # Liveness and the page stay open; the page asks for the key itself.
        assert client.get("/health").json()["api_key_required"] is True
        assert client.get("/").status_code == 200
    assert standin.calls == [1]


def test_a_full_queue_answers_503_with_retry_after(standin: StandIn) -> None:
    standin.release.clear()
    with client_for(standin, max_queue=2, max_wait_ms=0) as client, ThreadPoolExecutor(1) as pool:
        busy = pool.submit(client.post, "/predict", json={"texts": ["one", "two"]})
        assert standin.entered.wait(WAIT_S)
        refused = client.post("/predict", json={"text": "three"})
        standin.release.set()
        assert busy.result(timeout=WAIT_S).status_code == 200
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        assert client.post("/predict", json={"text": "four"}).status_code == 200


@pytest.mark.parametrize(("batching", "largest"), [(True, 8), (False, 1)])
def test_concurrent_requests_share_model_calls_only_with_batching(batching: bool, largest: int) -> None:
    standin = StandIn()
    standin.release.clear()
    with client_for(standin, batching=batching, max_batch=8, max_wait_ms=200) as client, ThreadPoolExecutor(9) as pool:
        # One request holds the model; eight more arrive meanwhile and wait together.
        first = pool.submit(client.post, "/predict", json={"text": "first"})
        assert standin.entered.wait(WAIT_S)
        waiting = [pool.submit(client.post, "/predict", json={"text": f"text {i}"}) for i in range(8)]
        # Bounded wait until all eight are queued (the queue counts texts accepted and not answered).
        for _ in range(WAIT_S * 100):
            if client.app.state.batcher.waiting == 9:
                break
            threading.Event().wait(0.01)
        standin.release.set()
        assert first.result(timeout=WAIT_S).status_code == 200
        assert all(future.result(timeout=WAIT_S).status_code == 200 for future in waiting)
    assert sum(standin.calls) == 9 and max(standin.calls) == largest


def test_metrics_count_requests_errors_and_batch_sizes(client: TestClient) -> None:
    client.post("/predict", json={"texts": ["a", "b"]})
    client.post("/predict", content=b"{", headers={"Content-Type": "application/json"})
    client.get("/no/such/page")
    text = client.get("/metrics").text
    assert re.search(r'tunesmith_requests_total\{route="/predict",status="200"\} 1\.0', text)
    assert re.search(r'tunesmith_requests_total\{route="/predict",status="400"\} 1\.0', text)
    assert re.search(r'tunesmith_requests_total\{route="other",status="404"\} 1\.0', text)
    assert re.search(r"tunesmith_batch_size_sum 2\.0", text)
    assert re.search(r'tunesmith_request_seconds_bucket\{le="0.005",route="/predict"\}', text)
    assert "tunesmith_texts_total 2.0" in text


def test_the_page_is_self_contained(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    # Nothing fetched from elsewhere: no absolute URL, no external script, style or font.
    assert not re.search(r"(src|href)\s*=|https?://|@import|url\(", page.text)
    assert "innerHTML" not in page.text  # model output and user text are set as text, never as markup


def test_an_error_inside_the_model_is_a_500_without_a_traceback(standin: StandIn) -> None:
    def broken(texts: list[str], pairs: list[str] | None = None, batch_size: int = 64) -> list[dict[str, Any]]:
        raise RuntimeError("secret internals")

    standin.predict = broken  # type: ignore[method-assign]
    with client_for(standin) as client:
        response = client.post("/predict", json={"text": "hello"})
        assert response.status_code == 500
        assert "secret internals" not in response.text and "Traceback" not in response.text
        assert client.post("/predict", json={"text": "still up"}).status_code == 500  # and the server stays up


def test_a_real_run_is_served_with_its_labels_and_metrics(trained_run: Path) -> None:
    import tunesmith

    predictor = tunesmith.load(trained_run)
    settings = Settings()
    app = create_app(predictor, settings, describe(trained_run, predictor, settings))
    texts = ["what a lovely one", "an awful boring experience"]
    with TestClient(app) as client:
        served = client.post("/predict", json={"texts": texts}).json()["predictions"]
        info = client.get("/info").json()
    direct = predictor.predict(texts)
    assert [row["label"] for row in served] == [row["label"] for row in direct]
    assert [row["score"] for row in served] == pytest.approx([row["score"] for row in direct])
    assert info["labels"] == json.loads((trained_run / "labels.json").read_text())
    assert info["backend"] == "pytorch" and "accuracy" in info["validation_metrics"]


def test_a_sentence_pair_model_takes_its_second_texts_and_requires_them() -> None:
    standin = StandIn(pairs=True)
    with client_for(standin) as client:
        both = client.post("/predict", json={"texts": ["one", "a rather longer text"], "text_pairs": ["x", "y"]})
        assert both.status_code == 200 and len(both.json()["predictions"]) == 2
        assert client.post("/predict", json={"text": "one", "text_pair": "z"}).status_code == 200
        missing = client.post("/predict", json={"texts": ["one"]})
        assert missing.status_code == 422 and "sentence pairs" in missing.json()["error"]
        uneven = client.post("/predict", json={"texts": ["one", "two"], "text_pairs": ["x"]})
        assert uneven.status_code == 422 and "2 texts but 1 second texts" in uneven.json()["error"]
        assert client.post("/predict", json={"text": "one", "text_pair": " "}).status_code == 422
    assert standin.pairs == [["x", "y"], ["z"]]


def test_an_onnx_export_is_served_as_the_run_predicts_with_its_gate_figures(trained_run: Path, tmp_path: Path) -> None:
    import tunesmith
    from tunesmith.export import export_run
    from tunesmith.export.runtime import OnnxModel
    from tunesmith.serve import load_model

    export = export_run(trained_run, "onnx", output=tmp_path / "onnx").path
    predictor = load_model(export, threads=None)
    assert isinstance(predictor.model, OnnxModel)
    settings = Settings()
    texts = ["what a lovely one", "an awful boring experience that went on and on", "fine"]
    with TestClient(create_app(predictor, settings, describe(export, predictor, settings))) as client:
        served = client.post("/predict", json={"texts": texts}).json()["predictions"]
        info = client.get("/info").json()
    direct = tunesmith.load(trained_run).predict(texts)
    assert [row["label"] for row in served] == [row["label"] for row in direct]
    for ours, theirs in zip(direct, served, strict=True):
        assert theirs["probabilities"] == pytest.approx(ours["probabilities"], abs=1e-5)
    parity = json.loads((export / "parity.json").read_text())
    assert info["backend"] == "onnx"
    assert info["validation_metrics"] == {"accuracy": parity["metric_after"], "examples": parity["examples"]}
    assert info["labels"] == json.loads((trained_run / "labels.json").read_text())
