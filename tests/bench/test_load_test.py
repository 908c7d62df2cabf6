"""bench/load_test.py against a server in this process: it stops at its request budget or its time, counts
every answer by status, and load-tests loopback addresses only."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.bench.scripts import bench_script
from tests.serve.test_app import StandIn
from tests.serve.test_page import served_in_a_thread
from tunesmith.serve.settings import Settings

TEXTS = ["short", "a rather longer text", "mid length"]


@pytest.fixture(scope="module")
def load_test() -> ModuleType:
    return bench_script("load_test")


def host_and_port(origin: str) -> tuple[str, int]:
    host, port = origin.removeprefix("http://").split(":")
    return host, int(port)


def test_the_clients_stop_at_the_request_budget(load_test: ModuleType) -> None:
    with served_in_a_thread(StandIn()) as origin:
        report = load_test.run_load(*host_and_port(origin), TEXTS, 4, 60.0, 40, None)
    assert report["requests"] == 40 and report["statuses"] == {"200": 40} and report["errors"] == 0
    assert report["seconds"] < 60
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"]
    assert report["texts_per_s"] == pytest.approx(40 / report["seconds"], rel=0.05)


def test_the_clients_stop_at_the_time_limit_and_count_refusals_as_errors(load_test: ModuleType) -> None:
    with served_in_a_thread(StandIn(), Settings(api_key="k")) as origin:
        report = load_test.run_load(*host_and_port(origin), TEXTS, 2, 1.0, 1_000_000, None)
    # One second, and each client's last request answered after it: well under the join's 60 s allowance.
    assert 0.95 < report["seconds"] < 10
    assert report["requests"] > 0 and report["errors"] == report["requests"]
    assert set(report["statuses"]) == {"401"} and report["texts_per_s"] == 0


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "http://192.168.0.1", "http://8.8.8.8:80"])
def test_only_loopback_servers_are_load_tested(load_test: ModuleType, url: str) -> None:
    # Address literals only: resolving a host name here would ask the network.
    with pytest.raises(SystemExit, match="only loopback servers"):
        load_test.loopback(url)
    assert load_test.loopback("http://127.0.0.1:8123") == ("127.0.0.1", 8123)
