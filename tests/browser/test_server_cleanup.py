"""``spikelab dashboard`` cleans up after itself, checked on the real command with a real browser: a closed page's
kernel is reclaimed (and the run it was training ends "stopped"), pages beyond ``--max-kernels`` get a message
instead of a kernel, and SIGTERM leaves no server, no kernel and no listening port behind.

Nothing here is timed: each step waits for its expected end state (with a generous limit for failing)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from spikelab.serve import bind_problem
from spikelab.training import list_runs, run_state

pytestmark = pytest.mark.browser
LIMIT_S = 300  # a limit for failing, not a timing


def _wait_for(condition, what, timeout_s=LIMIT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kernels(command: psutil.Process) -> set[int]:
    """The pids of the kernels running under the command (Voila's children running ipykernel)."""
    out = set()
    for p in command.children(recursive=True):
        try:
            if "ipykernel_launcher" in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.NoSuchProcess:
            continue
    return out


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_dashboard_reclaims_closed_pages_caps_kernels_and_leaves_nothing_after_sigterm(browser, tmp_path):
    port, runs = _free_port(), tmp_path / "runs"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONUNBUFFERED="1")
    env.pop("SPIKELAB_SMOKE", None)
    log = open(tmp_path / "dashboard.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "spikelab", "dashboard", "--no-browser", "--port", str(port),
                             "--runs", str(runs), "--cull-idle", "30", "--max-kernels", "2"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    command = psutil.Process(proc.pid)
    seen: set[int] = set()
    url = f"http://127.0.0.1:{port}/"
    try:
        # the preheated spare kernel is ready once it has run the playground: then the first page is served at once
        _wait_for(lambda: seen.update(_kernels(command)) or seen, "the preheated kernel")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, timeout=LIMIT_S * 1000)
        page.wait_for_selector(".spikelab-curves .main-svg", timeout=LIMIT_S * 1000)
        page.locator(".spikelab-epochs .noUi-handle").focus()
        page.locator(".spikelab-epochs .noUi-handle").press("End")  # 200 epochs: only a stop ends this run
        page.wait_for_function("() => document.querySelector('.spikelab-epochs .widget-readout').innerText.trim()"
                               " === '200'", timeout=LIMIT_S * 1000)
        page.click("button.spikelab-start")
        run = _wait_for(lambda: next(iter(list_runs(runs)), None), "the run's first epoch")
        assert run_state(run) == "running"
        page_kernels = _wait_for(lambda: seen.update(_kernels(command)) or _kernels(command), "the kernels")

        # --max-kernels 2: the page's kernel and the refilled spare; a second page takes the spare, a third is told
        second = browser.new_page()
        second.goto(url, timeout=LIMIT_S * 1000)
        second.wait_for_selector(".spikelab-curves .main-svg", timeout=LIMIT_S * 1000)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=LIMIT_S)
        assert refused.value.code == 503
        assert "dashboards are open on this server" in refused.value.read().decode()
        seen.update(_kernels(command))

        # closing the pages gives their kernels back; the training one stops its run first
        page.close()
        second.close()
        _wait_for(lambda: all(_gone(pid) for pid in page_kernels), "the closed pages' kernels to be culled")
        assert run_state(run) == "stopped"
        _wait_for(lambda: seen.update(_kernels(command)) or _kernels(command) - page_kernels,
                  "the preheat pool to refill once kernels are free again")
    finally:
        seen.update(_kernels(command))
        proc.send_signal(signal.SIGTERM)
        proc.wait(LIMIT_S)
        log.close()
    lost = [pid for pid in seen if not _gone(pid)]
    assert not lost, f"kernels left running after SIGTERM: {lost}"
    assert not [p for p in psutil.process_iter(["cmdline"]) if f"--port={port}" in " ".join(p.info["cmdline"] or [])]
    assert bind_problem("127.0.0.1", port) is None, "the port is still taken"
    assert run_state(run) == "stopped"
