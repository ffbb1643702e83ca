"""One Voila server for every dashboard (session-scoped) and one headless Chromium, driven by Playwright.

Debian's ``/usr/bin/chromium`` is used as is (``playwright install`` is never run: it downloads a browser). Pages
load in 10-30 s on two cores (a fresh kernel per page imports torch and runs the notebook).
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from _support import require

from spikelab import dashboards
from spikelab.history import History
from spikelab.serve import voila_command, voila_env

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage"]
PAGE_LOAD_S = 180  # first render: kernel start, imports, the whole notebook

#: the run every browser test can find in the runs folder, with known curves
SAMPLE_RUN = "sample-run"
SAMPLE_TRAIN_LOSS = [2.0, 1.0, 0.5]
SAMPLE_TEST_ACC = [0.3, 0.6, 0.9]


def _write_sample_run(folder: Path) -> None:
    folder.mkdir(parents=True)
    hist = History(epochs=[dict(epoch=e + 1, train_loss=loss, train_acc=acc - 0.05, test_loss=loss + 0.1,
                                test_acc=acc, lr=1e-3, time_s=float(e)) for e, (loss, acc) in
                           enumerate(zip(SAMPLE_TRAIN_LOSS, SAMPLE_TEST_ACC))],
                   steps=[dict(step=s + 1, epoch=s // 2 + 1, loss=3.0 - s * 0.4, acc=0.1 * s, lr=1e-3, time_s=float(s))
                          for s in range(6)])
    (folder / "history.jsonl").write_text(hist.to_jsonl())
    (folder / "config.json").write_text(json.dumps(dict(dataset="digits", model="mlp", loss="sdt", T=4)))
    (folder / "metrics.json").write_text(json.dumps(dict(stopped=False, best_test_acc=0.9)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_browser_tools() -> None:
    require(CHROMIUM.exists(), "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    require(importlib.util.find_spec("voila") is not None, "needs voila (pip install 'spikelab[lab]')")
    require(importlib.util.find_spec("playwright") is not None, "needs the playwright Python package")


@contextmanager
def _serve(folder: Path, tmp: Path, runs: Path, **options):
    """Voila serving the notebooks of ``folder`` (with spikelab's template) on a free port, runs going to ``runs``;
    yields ``(url, port, log)`` and stops the server and its kernels afterwards. ``options`` go to
    :func:`spikelab.serve.voila_command` (e.g. ``cull_idle_s``)."""
    port = _free_port()
    env = voila_env(dict(os.environ, SPIKELAB_RUNS_DIR=str(runs), XDG_CONFIG_HOME=str(tmp / "config"),
                         XDG_CACHE_HOME=str(tmp / "cache"), PYTHONUNBUFFERED="1"))
    env.pop("SPIKELAB_SMOKE", None)
    log = tmp / "voila.log"
    cmd = voila_command(folder, port=port, open_browser=False, **options) + ["--show_tracebacks=True"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"voila did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    try:
        yield url, port, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group holds voila and the kernels it started
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="session")
def voila_server(tmp_path_factory):
    """Voila serving ``spikelab/dashboards/`` on a free port; runs go to a temporary folder that already holds
    SAMPLE_RUN (described by ``.sample``)."""
    _require_browser_tools()
    tmp = tmp_path_factory.mktemp("voila")
    runs = tmp / "runs"
    _write_sample_run(runs / SAMPLE_RUN)
    with _serve(dashboards.HERE, tmp, runs) as (url, port, log):
        sample = SimpleNamespace(name=SAMPLE_RUN, train_loss=SAMPLE_TRAIN_LOSS, test_acc=SAMPLE_TEST_ACC)
        yield SimpleNamespace(url=url, port=port, runs=runs, log=log, sample=sample)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    _require_browser_tools()
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("chromium")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"), XDG_CACHE_HOME=str(tmp / "cache"))
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
        yield b
        b.close()


class Dashboard:
    """One dashboard page: open, read plots, move sliders, check for errors, save a screenshot."""

    def __init__(self, browser, server, name: str, shot_name: str | None = None) -> None:
        self.name, self.server, self.shot_name = name, server, shot_name or name
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("websocket", lambda ws: self.requests.append(ws.url))
        self.page.goto(f"{server.url}/voila/render/{name}.ipynb", timeout=PAGE_LOAD_S * 1000)
        self.wait_executed()

    def wait_executed(self) -> None:
        """Wait until the kernel has run every cell: pages render progressively, each cell's placeholder
        ("skeleton") giving way to its output area as its result arrives."""
        self.wait_until("() => document.querySelector('.jp-Cell-outputWrapper') !== null"
                        " && document.querySelector('.voila-skeleton-container') === null", timeout_s=PAGE_LOAD_S)

    def off_machine_requests(self) -> list[str]:
        """Requests to anything but the server (``data:``/``blob:`` URLs stay in the page)."""
        port = self.server.port
        local = (f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}/", "data:", "blob:", "about:")
        return [u for u in self.requests if not u.startswith(local)]

    def wait_plot(self, css: str) -> None:
        """Wait until the plot in the element with class ``spikelab-<css>`` is drawn (scrolled into view first:
        plotly draws a plot below the fold only once it is shown)."""
        self.page.wait_for_selector(f".spikelab-{css}", state="attached", timeout=PAGE_LOAD_S * 1000)
        self.page.locator(f".spikelab-{css}").first.scroll_into_view_if_needed(timeout=PAGE_LOAD_S * 1000)
        self.page.wait_for_selector(f".spikelab-{css} .main-svg", timeout=PAGE_LOAD_S * 1000)

    def plot(self, css: str) -> dict:
        """The drawn plot's traces (``x``, ``y``, ``z`` as lists, ``type``, ``name``, ``meta``) and title."""
        return self.page.evaluate("""(css) => {
            const gd = document.querySelector(`.spikelab-${css} .js-plotly-plot`);
            if (!gd || !gd._fullData) return null;
            // numpy arrays travel base64-encoded; plotly decodes them into _fullData (typed arrays)
            const arr = (a) => a == null ? null : Array.from(a, (v) => (v != null && typeof v === 'object') ? Array.from(v) : v);
            return {title: (gd.layout.title && gd.layout.title.text) || '',
                    traces: gd._fullData.map((d) => ({type: d.type, name: d.name, meta: d.meta || null,
                                                       x: arr(d.x), y: arr(d.y), z: arr(d.z)}))};
        }""", css)

    def wait_until(self, js: str, arg=None, timeout_s: float = 60) -> None:
        """Wait until ``js`` (a function of ``arg`` returning a truthy value) holds in the page."""
        self.page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000)

    def press_slider(self, css: str, key: str, times: int = 1) -> None:
        """Focus the handle of slider ``spikelab-<css>`` and press ``key`` (e.g. ``ArrowRight``) ``times`` times."""
        handle = self.page.locator(f".spikelab-{css} .noUi-handle")
        handle.focus()
        for _ in range(times):
            handle.press(key)

    def text(self, css: str) -> str:
        return self.page.inner_text(f".spikelab-{css}")

    def assert_clean(self) -> None:
        """No panel error, no error or stderr output from a cell, no traceback, no widget that failed to show, no
        uncaught page error, no console error, and no request to any host but the server."""
        assert self.page.locator(".spikelab-error").count() == 0, self.text("error")
        bad = self.page.locator('[data-mime-type="application/vnd.jupyter.stderr"], '
                                '[data-mime-type="application/vnd.jupyter.error"]')
        assert bad.count() == 0, bad.first.inner_text()
        body = self.page.inner_text("body")
        assert "Traceback" not in body and "Error displaying widget" not in body
        assert not self.page_errors, self.page_errors
        assert not self.console_errors, self.console_errors
        assert not self.off_machine_requests(), self.off_machine_requests()

    def screenshot(self, suffix: str = "") -> Path:
        """Save the whole dashboard as ``artifacts/screenshots/<name><suffix>.png`` (Voila scrolls inside a panel,
        so the viewport is first stretched to the bottom of the last cell)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.shot_name}{suffix}.png"
        self.page.evaluate("() => { window.scrollTo(0, 0); for (const e of document.querySelectorAll('*'))"
                           " { if (e.scrollTop) e.scrollTop = 0; } }")  # measure from the top of the page
        height = self.page.evaluate("() => 40 + Math.max(...Array.from(document.querySelectorAll("
                                    "'.jp-Cell, .jp-OutputArea, .jupyter-widgets'), (e) => e.getBoundingClientRect().bottom))")
        size = self.page.viewport_size
        self.page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), 6000))})
        self.page.screenshot(path=str(path), full_page=True, timeout=180_000)  # a page that trains draws slowly
        self.page.set_viewport_size(size)
        return path

    def has_data(self, css: str) -> bool:
        """True if the plot in ``spikelab-<css>`` holds at least one trace with data (points, cells or pixels)."""
        return self.page.evaluate("""(css) => {
            const gd = document.querySelector(`.spikelab-${css} .js-plotly-plot`);
            if (!gd || !gd._fullData) return false;
            const n = (a) => a == null ? 0 : (a.length || 0);
            return gd._fullData.some((d) => n(d.x) + n(d.y) + n(d.z) + n(d.cells && d.cells.values) > 0);
        }""", css)

    def close(self) -> None:
        """Close the tab (the server frees its kernel ``closed_page_s`` seconds later)."""
        self.page.close()


@pytest.fixture
def open_dashboard(browser, voila_server):
    """``open_dashboard(name)`` opens a dashboard in a new page (closed after the test)."""
    pages: list[Dashboard] = []

    def _open(name: str) -> Dashboard:
        d = Dashboard(browser, voila_server, name)
        pages.append(d)
        return d

    yield _open
    for d in pages:
        d.close()


# ------------------------------------------------------------------------------------------------------- labs
LABS_DIR = Path(__file__).resolve().parents[2] / "labs"
@pytest.fixture(scope="session")
def labs_server(tmp_path_factory):
    """Voila serving ``labs/`` on a free port, as ``spikelab dashboard NN_topic`` serves one lab. The tests open
    eleven labs one after another, more than the server's cap of 8 kernels: each closed page's kernel must be freed
    (after ``spikelab.serve.CLOSED_PAGE_S``), as for a visitor clicking through the labs."""
    _require_browser_tools()
    tmp = tmp_path_factory.mktemp("voila-labs")
    with _serve(LABS_DIR, tmp, tmp / "runs") as (url, port, log):
        yield SimpleNamespace(url=url, port=port, runs=tmp / "runs", log=log)


@pytest.fixture
def open_lab(browser, labs_server):
    """``open_lab(name)`` opens a lab in a new page (closed after the test); its screenshot is ``lab-<name>.png``."""
    pages: list[Dashboard] = []

    def _open(name: str) -> Dashboard:
        d = Dashboard(browser, labs_server, name, shot_name=f"lab-{name}")
        pages.append(d)
        return d

    yield _open
    for d in pages:
        d.close()

