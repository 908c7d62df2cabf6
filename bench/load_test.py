"""Load test for `tunesmith serve`: N concurrent clients for a fixed time, loopback only.

    python bench/load_test.py --url http://127.0.0.1:8000 --clients 32 --duration 60
    python bench/load_test.py --serve runs/sst2-minilm-3k-onnx-int8 --clients 32 --duration 60 [--no-batching]

Each client sends one text per request (SST-2 dev sentences in turn) over its own keep-alive
connection, the next as soon as the last is answered, until --duration seconds or
--max-requests in all. Prints and saves requests/s, texts/s, p50/p95/p99 latency and the
errors by status. With --serve it times the offline predictor on the same texts at batch 32
(the ceiling a batching server approaches) for 20 s, starts the server on a free port of
127.0.0.1, runs the test, stops it with SIGTERM, times the offline predictor again, and reports
the server's share of the mean of the two offline figures. Only loopback addresses are
accepted: this is not a tool for other hosts.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import IO, Any

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2" / "dev.tsv"
STARTUP_S = 180


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    target.add_argument("--serve", type=Path, metavar="RUN_OR_EXPORT", help="start `tunesmith serve` on it")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (at most 600)")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--texts", type=Path, default=DEFAULT_DEV, help="a TSV with a sentence column")
    parser.add_argument("--no-batching", action="store_true", help="with --serve: serve without micro-batching")
    parser.add_argument("--threads", type=int, help="with --serve: the model's threads, offline and in the server")
    parser.add_argument("--api-key", default=os.environ.get("TUNESMITH_API_KEY"))
    parser.add_argument("--output", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    if not 0 < args.duration <= 600 or args.clients < 1 or args.max_requests < 1:
        parser.error("--duration must be in (0, 600], --clients and --max-requests at least 1")
    texts = read_texts(args.texts)
    if args.url:
        host, port = loopback(args.url)
        report = run_load(host, port, texts, args.clients, args.duration, args.max_requests, args.api_key)
    else:
        report = with_server(args, texts)
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


def loopback(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    address = socket.gethostbyname(host) if host else ""
    if not address or not ipaddress.ip_address(address).is_loopback:
        raise SystemExit(f"{url}: only loopback servers (127.0.0.1, localhost) may be load-tested with this script")
    return address, parsed.port or 80


def read_texts(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["sentence"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def run_load(
    host: str, port: int, texts: list[str], clients: int, duration: float, max_requests: int, key: str | None
) -> dict[str, Any]:
    """`clients` threads, each with its own connection, until the time or the request budget runs out."""
    budget = threading.Semaphore(max_requests)
    stop_at = time.monotonic() + duration
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        sent = number
        while time.monotonic() < stop_at and budget.acquire(blocking=False):
            body = json.dumps({"text": texts[sent % len(texts)]})
            sent += clients
            began = time.perf_counter()
            try:
                connection.request("POST", "/predict", body, headers)
                response = connection.getresponse()
                response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
            with lock:
                latencies.append(time.perf_counter() - began)
                statuses[status] += 1
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(number,), daemon=True) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 60)
    elapsed = time.perf_counter() - began
    return summary(latencies, statuses, elapsed, clients)


def summary(latencies: list[float], statuses: Counter[str], elapsed: float, clients: int) -> dict[str, Any]:
    ordered = sorted(latencies)

    def percentile(share: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2) if ordered else 0.0

    answered = statuses.get("200", 0)
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        # One text per request: texts/s counts the answered ones.
        "texts_per_s": round(answered / elapsed, 2),
        "p50_ms": percentile(0.50),
        "p95_ms": percentile(0.95),
        "p99_ms": percentile(0.99),
        "errors": sum(count for status, count in statuses.items() if status != "200"),
        "statuses": dict(statuses),
    }


def offline_texts_per_s(path: Path, texts: list[str], threads: int | None, seconds: float = 20.0) -> float:
    """The predictor in this process, batch 32, for about `seconds`: what the server's batching aims at."""
    from tunesmith.serve import load_model

    predictor = load_model(path, threads)
    predictor.predict(texts[:32], batch_size=32)
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        start = (done * 32) % (len(texts) - 32)
        predictor.predict(texts[start : start + 32], batch_size=32)
        done += 32
    return done / (time.perf_counter() - began)


def with_server(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    # Offline before and after the server's run: on a shared machine the load drifts in a minute.
    before = offline_texts_per_s(args.serve, texts, args.threads)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tunesmith", "serve", str(args.serve), "--port", str(port)]
    command += ["--no-batching"] if args.no_batching else []
    command += ["--threads", str(args.threads)] if args.threads else []
    # The server's log goes to a file: a pipe nobody reads during the run would stall it once full.
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            wait_for(port, server, log)
            report = run_load("127.0.0.1", port, texts, args.clients, args.duration, args.max_requests, args.api_key)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=60)
    after = offline_texts_per_s(args.serve, texts, args.threads)
    offline = (before + after) / 2
    report.update(
        served=str(args.serve),
        batching=not args.no_batching,
        threads=args.threads,
        offline_texts_per_s_batch_32=round(offline, 2),
        offline_before_after=[round(before, 2), round(after, 2)],
        share_of_offline=round(report["texts_per_s"] / offline, 3),
    )
    return report


def wait_for(port: int, server: subprocess.Popen, log: IO[str]) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited: {log.read()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not come up within {STARTUP_S} s")


if __name__ == "__main__":
    main()
