"""GET /, the page to try a model by hand, in a real headless browser: Debian's chromium driven by selenium.

The browser and its driver come from the system (`apt-get install chromium chromium-driver`; .ci/run
installs them where it can); selenium is given both paths, so nothing is downloaded. Without them
the tests skip, saying what is missing. The servers listen on 127.0.0.1, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.test_serve_process import free_port, wait_until_up
from tunesmith.config import RunConfig
from tunesmith.serve.app import create_app
from tunesmith.serve.settings import Settings, bind

pytestmark = pytest.mark.slow

# Bounds every wait for the browser: a page that never answers fails the test, it does not hang.
WAIT_S = 30
KEY = "page-test-key"
# Headless, and nothing the browser would fetch on its own: no updates, sync, field trials or QUIC probes.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Every host name but the test server's address resolves to nothing, so no request can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--no-proxy-server",
]


def browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver, or skip the test saying which is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path)
        pytest.skip(f"no {missing} on this machine: `apt-get install chromium chromium-driver` runs the browser test")
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium, chromedriver = browser_paths()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        # Selenium Manager looks for drivers online unless told not to; the driver's path is given anyway.
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition, f"{what} within {WAIT_S} s")


def text_of(driver: Any, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def fetched(driver: Any) -> list[str]:
    """Every URL the page loaded or fetched, as the browser recorded it."""
    return driver.execute_script("return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")


def predict_on_page(driver: Any, text: str) -> None:
    box = driver.find_element("id", "text")
    box.clear()
    box.send_keys(text)
    driver.find_element("id", "go").click()


def test_the_page_predicts_with_a_served_run_and_asks_for_its_key(
    browser: Any, trained_run: Path, tmp_path: Path
) -> None:
    import tunesmith

    port = free_port()
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "tunesmith", "serve", str(trained_run), "--port", str(port)]
            + ["--api-key-file", str(key_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(server, port)
        origin = f"http://127.0.0.1:{port}"
        browser.get(origin + "/")
        wait_for(browser, lambda d: "classification" in text_of(d, "about"), "the page showing the model's task")
        assert browser.find_element("id", "keyline").is_displayed()

        text = "what a lovely one"
        predict_on_page(browser, text)
        error = wait_for(browser, lambda d: text_of(d, "error"), "the page showing the refusal")
        assert "API key" in error and text_of(browser, "result") == ""

        browser.find_element("id", "key").send_keys(KEY)
        predict_on_page(browser, text)
        wait_for(browser, lambda d: d.find_elements("css selector", "#result .row"), "the prediction on the page")
        expected = tunesmith.load(trained_run).predict([text])[0]
        shown = browser.find_element("css selector", "#result p").text
        assert shown == f"Label: {expected['label']} ({expected['score']:.3f})"
        rows = browser.find_elements("css selector", "#result .row")
        assert [row.find_element("css selector", ".name").text for row in rows] == list(expected["probabilities"])
        for row, probability in zip(rows, expected["probabilities"].values(), strict=True):
            assert row.text.endswith(f"{probability:.3f}")
        assert text_of(browser, "error") == ""

        urls = fetched(browser)
        assert {f"{origin}/", f"{origin}/health", f"{origin}/predict"} <= set(urls)
        assert all(url.startswith(origin + "/") for url in urls), urls
        # The console holds no script error: the refused request's 401 is the only complaint.
        severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert all("401" in message for message in severe), severe
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=WAIT_S)


def test_the_page_shows_a_generated_answer_as_text_with_its_line_breaks(browser: Any) -> None:
    with served_in_a_thread(Echo()) as origin:
        browser.get(origin + "/")
        wait_for(browser, lambda d: "causal" in text_of(d, "about"), "the page showing the model's task")
        predict_on_page(browser, "say <b>hi</b>")
        shown = wait_for(browser, lambda d: d.find_elements("css selector", "#result p.generated"), "the answer")
        assert browser.execute_script("return arguments[0].textContent", shown[0]) == "line one\n<b>hi</b>"
        assert browser.find_elements("css selector", "#result b") == []
        # Its line breaks show as breaks: the paragraph is two lines high.
        assert len(shown[0].text.splitlines()) == 2


class Echo:
    """A stand-in generative model: answers with a fixed line and the text's markup-looking part."""

    def __init__(self) -> None:
        self.config = RunConfig.model_validate({"task": "causal", "data": {"train": "x.jsonl"}})
        self.names: list[str] = []

    def predict(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64) -> list[dict[str, Any]]:
        return [{"generated_text": "line one\n" + text.removeprefix("say ")} for text in texts]


class Tagger:
    """A stand-in NER model: names in NAMES are PER entities. Enough to draw the page's highlights."""

    NAMES = ("anna", "<img src=x onerror=document.title='owned'>")

    def __init__(self) -> None:
        self.config = RunConfig.model_validate({"task": "ner", "data": {"train": "x.conll"}})
        self.names = ["O", "B-PER", "I-PER"]

    def predict(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64) -> list[dict[str, Any]]:
        return [{"entities": self._entities(text)} for text in texts]

    def _entities(self, text: str) -> list[dict[str, Any]]:
        found = []
        for name in self.NAMES:
            start = text.find(name)
            if start >= 0:
                found.append({"text": name, "type": "PER", "start": start, "end": start + len(name), "score": 0.9})
        return sorted(found, key=lambda entity: entity["start"])


@contextlib.contextmanager
def served_in_a_thread(predictor: Any, settings: Settings | None = None) -> Iterator[str]:
    """The app on 127.0.0.1 under uvicorn in a thread of this process; its origin."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    app = create_app(predictor, settings or Settings(), {"task": predictor.config.task})
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_S)
        sock.close()


def test_the_page_highlights_entities_and_never_runs_a_text_as_markup(browser: Any) -> None:
    hostile = Tagger.NAMES[1]
    text = f"then anna met {hostile} in rome"
    with served_in_a_thread(Tagger()) as origin:
        browser.get(origin + "/")
        wait_for(browser, lambda d: "ner" in text_of(d, "about"), "the page showing the model's task")
        assert not browser.find_element("id", "keyline").is_displayed()
        predict_on_page(browser, text)
        marks = wait_for(browser, lambda d: d.find_elements("css selector", "#result mark"), "highlighted entities")
        # Each highlight: the entity's own characters, then its type and score.
        spans = [browser.execute_script("return arguments[0].firstChild.textContent", mark) for mark in marks]
        assert spans == ["anna", hostile]
        assert [mark.find_element("css selector", "small").text for mark in marks] == ["PER 0.90"] * 2
        paragraph = browser.find_element("css selector", "#result p")
        assert browser.execute_script("return arguments[0].textContent", paragraph) == text.replace(
            hostile, hostile + "PER 0.90"
        ).replace("anna", "annaPER 0.90")
        # Shown as text: the page made no image of it, and its handler never ran.
        assert browser.find_elements("css selector", "#result img") == []
        assert browser.title == "tunesmith"
