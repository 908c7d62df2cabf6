"""`tunesmith serve` as a process: it answers on 127.0.0.1, and on SIGTERM answers every request in flight."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# Every wait below is bounded by this: a server that never comes up or never stops fails the test.
STARTUP_S = 120
REQUEST_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until_up(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not answer /health within {STARTUP_S} s")


@pytest.mark.slow
def test_sigterm_lets_every_request_in_flight_finish(trained_run: Path) -> None:
    port = free_port()
    # A long batching wait holds the requests inside the server when SIGTERM comes.
    command = [sys.executable, "-m", "tunesmith", "serve", str(trained_run), "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--max-batch", "64", "--max-wait-ms", "1500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(server, port)
        texts = [f"what a lovely one number {i}" for i in range(12)]
        with ThreadPoolExecutor(len(texts)) as pool:
            answers = [pool.submit(post, port, {"text": text}) for text in texts]
            time.sleep(0.5)  # all sent, none answered: the batch waits 1.5 s
            assert not any(answer.done() for answer in answers)
            server.send_signal(signal.SIGTERM)
            results = [answer.result(timeout=REQUEST_S) for answer in answers]
        assert [status for status, _ in results] == [200] * len(texts)
        assert all(len(body["predictions"]) == 1 for _, body in results)
        server.wait(timeout=REQUEST_S)
        # Stopped for good: nothing listens any more.
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=REQUEST_S)
        server.stdout.close()
        server.stderr.close()


def test_serve_listens_on_this_machine_only_by_default() -> None:
    from tunesmith.cli import build_parser

    args = build_parser().parse_args(["serve", "runs/x"])
    assert args.host == "127.0.0.1"
