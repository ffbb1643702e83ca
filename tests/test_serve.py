"""``spikelab dashboard`` and ``spikelab lab``: which notebook is served, the command lines, the port check."""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from spikelab import dashboards, serve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def parser():
    p = argparse.ArgumentParser(prog="spikelab")
    serve.add_serve_commands(p.add_subparsers(dest="command"))
    return p


@pytest.fixture
def labs(tmp_path, monkeypatch):
    folder = tmp_path / "labs"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), folder / "01_neuron.ipynb")
    monkeypatch.setenv(serve.LABS_ENV, str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


def test_every_dashboard_ships_as_a_thin_notebook():
    assert dashboards.names()[0] == "playground"
    for name in dashboards.names():
        nb = nbformat.read(dashboards.path(name), as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        assert code[0].metadata.get("tags") == ["parameters"] and code[0].source == "SMOKE = False"
        assert 'SMOKE = SMOKE or os.environ.get("SPIKELAB_SMOKE") == "1"' in code[1].source
        assert "spikelab.viz import widgets" in code[2].source
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: committed with outputs"
        assert sum(len(c.source.splitlines()) for c in code) <= 15, f"{name}: logic belongs in spikelab/"
    with pytest.raises(ValueError, match="name must be one of"):
        dashboards.path("nope")


def test_find_notebook_by_name_path_or_lab_stem(labs):
    assert serve.find_notebook(None) == dashboards.path("playground")
    assert serve.find_notebook("runs") == dashboards.path("runs")
    lab = (labs / "01_neuron.ipynb").resolve()
    assert serve.find_notebook("01_neuron") == lab
    assert serve.find_notebook("labs/01_neuron.ipynb") == lab
    assert serve.find_notebook(str(lab)) == lab
    assert serve.find_notebook("elsewhere/01_neuron.ipynb") == lab  # found by stem
    with pytest.raises(ValueError, match=r"no dashboard or lab notebook named 'nope'; available: playground, .*01_neuron"):
        serve.find_notebook("nope")
    with pytest.raises(ValueError, match="name must be a non-empty string"):  # the CLI reports it, no traceback
        serve.find_notebook(" ")
    with pytest.raises(TypeError, match="name must be a str or None, got int"):
        serve.find_notebook(3)


def test_voila_command_binds_locally_and_respects_the_flags():
    nb = dashboards.path("neuron")
    cmd = serve.voila_command(nb, port=9123, open_browser=False)
    assert cmd[:4] == [sys.executable, "-m", "voila", str(nb)]
    assert "--port=9123" in cmd and "--Voila.ip=127.0.0.1" in cmd and "--no-browser" in cmd
    assert "--Voila.port_retries=0" in cmd and "--preheat_kernel=True" in cmd
    assert "--VoilaConfiguration.progressive_rendering=True" not in cmd  # Voila refuses it with preheating
    folder = serve.voila_command(dashboards.HERE, host="0.0.0.0")
    assert "--Voila.ip=0.0.0.0" in folder and "--no-browser" not in folder
    assert "--preheat_kernel=True" not in folder  # a folder has no single notebook to preheat


@pytest.mark.parametrize("where", ["lab", "folder", "own", "no-preheat"])
def test_voila_command_renders_every_page_but_a_dashboard_progressively(where, tmp_path):
    """A page of many widgets (a lab) rendered in one go loses its last widgets ("model not found"): only the
    shipped one-panel dashboards are preheated, everything else renders progressively."""
    own = tmp_path / "mine.ipynb"
    own.write_text("{}")
    nb = {"lab": ROOT / "labs" / "03_surrogate_gradients.ipynb", "folder": ROOT / "labs", "own": own,
          "no-preheat": dashboards.path("neuron")}[where]
    cmd = serve.voila_command(nb, preheat=where != "no-preheat")
    assert "--VoilaConfiguration.progressive_rendering=True" in cmd
    assert not any(flag.startswith(("--preheat_kernel", "--pool_size")) for flag in cmd)
    assert serve.is_dashboard(dashboards.path("playground")) and not serve.is_dashboard(own)


def test_lab_command_is_offline(tmp_path):
    cmd = serve.lab_command(tmp_path, port=9200, open_browser=False)
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    for flag in ("--ServerApp.ip=127.0.0.1", "--ServerApp.port=9200", "--ServerApp.port_retries=0",
                 "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                 f"--ServerApp.root_dir={tmp_path}", "--no-browser"):
        assert flag in cmd


def test_port_free_sees_a_listening_socket():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not serve.port_free("127.0.0.1", port)
    assert serve.port_free("127.0.0.1", port)


def test_dashboard_refuses_a_taken_port_before_launching(parser, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(serve, "run_server", lambda *a, **k: pytest.fail("must not launch on a taken port"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        args = parser.parse_args(["dashboard", "neuron", "--port", str(port), "--no-browser"])
        assert args.func(args) == 2
    err = capsys.readouterr().err
    assert f"error: port {port} on 127.0.0.1 is already in use" in err and "--port" in err


@pytest.mark.parametrize("host, message", [
    ("999.1.1.1", "is not an IP address or a host name this machine can resolve"),
    ("not a host", "is not an IP address or a host name this machine can resolve"),
    ("", "is not an IP address or a host name"),
    ("192.0.2.1", "is not an address of this machine"),  # TEST-NET-1: valid, but never a local address
])
def test_a_bad_host_is_named_as_such_not_as_a_taken_port(parser, monkeypatch, capsys, host, message):
    monkeypatch.setattr(serve, "run_server", lambda *a, **k: pytest.fail("must not launch on a bad host"))
    for command in (["dashboard", "neuron"], ["lab", "--root", "."]):
        args = parser.parse_args([*command, "--host", host, "--port", "9555", "--no-browser"])
        assert args.func(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --host ") and message in err[0], err
        assert "already in use" not in err[0]


def test_dashboard_launches_voila_with_the_runs_folder(parser, monkeypatch, capsys, tmp_path):
    seen = {}

    def fake_run(cmd, env):
        seen.update(cmd=cmd, env=env)
        return 0

    monkeypatch.setattr(serve, "run_server", fake_run)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(serve.RUNS_ENV, raising=False)
    args = parser.parse_args(["dashboard", "--no-browser", "--port", "9321"])
    assert args.func(args) == 0
    assert seen["cmd"][3] == str(dashboards.path("playground")) and "--port=9321" in seen["cmd"]
    assert seen["env"][serve.RUNS_ENV] == str(tmp_path / "runs")
    assert "http://127.0.0.1:9321/" in capsys.readouterr().out


def test_dashboard_unknown_name_is_a_clear_error(parser, capsys):
    args = parser.parse_args(["dashboard", "no-such-thing"])
    assert args.func(args) == 2
    assert "no dashboard or lab notebook named 'no-such-thing'" in capsys.readouterr().err


def test_lab_opens_the_labs_folder(parser, labs, monkeypatch):
    seen = {}
    monkeypatch.setattr(serve, "run_server", lambda cmd, env: seen.update(cmd=cmd) or 0)
    args = parser.parse_args(["lab", "--no-browser", "--port", "9400"])
    assert args.func(args) == 0
    assert f"--ServerApp.root_dir={labs.resolve()}" in seen["cmd"] and "--ServerApp.port=9400" in seen["cmd"]


@pytest.mark.parametrize("port", ["0", "70000", "abc"])
def test_bad_port_is_rejected_by_the_parser(parser, port, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(["dashboard", "--port", port])
    assert "port must be" in capsys.readouterr().err


def test_dashboards_ship_as_package_data():
    # a wheel carries only .py files unless the build configuration lists the notebooks
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    data = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {})
    assert "*.ipynb" in data.get("spikelab.dashboards", []), "list spikelab/dashboards/*.ipynb as package data"


def test_voila_command_culls_caps_and_takes_a_token():
    nb = dashboards.path("neuron")
    cmd = serve.voila_command(nb, cull_idle_s=60, max_kernels=3, token="s3cret")
    assert f"--VoilaConfiguration.multi_kernel_manager_class={serve.KERNEL_MANAGER}" in cmd
    assert "--CappedKernelManager.cull_idle_timeout=60" in cmd and "--CappedKernelManager.max_kernels=3" in cmd
    assert "--CappedKernelManager.cull_interval=20" in cmd  # a third of the idle time
    assert "--Voila.token=s3cret" in cmd
    default = serve.voila_command(nb)
    assert f"--CappedKernelManager.cull_idle_timeout={serve.CULL_IDLE_S}" in default
    assert f"--CappedKernelManager.cull_interval={serve.CULL_INTERVAL_S}" in default
    assert not any(a.startswith("--Voila.token") for a in default)  # loopback: no token
    assert f"--CappedKernelManager.closed_page_timeout={serve.CLOSED_PAGE_S}" in default
    assert "--CappedKernelManager.closed_page_timeout=5" in serve.voila_command(nb, closed_page_s=5)
    for bad in (dict(cull_idle_s=-1), dict(max_kernels=1.5), dict(cull_interval_s=True), dict(closed_page_s=-2)):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be an int >= 0"):
            serve.voila_command(nb, **bad)


@pytest.mark.parametrize("had_page, alone_s, culled", [
    (True, 29, False), (True, 31, True),      # its page closed: freed after closed_page_timeout (30 s)
    (False, 31, False), (False, 301, True),   # no page ever connected: after cull_idle_timeout (300 s)
])
def test_kernel_manager_frees_a_closed_pages_kernel_sooner(had_page, alone_s, culled, monkeypatch):
    """Voila's own shutdown request from a closing page is refused (no XSRF cookie), so the manager frees a kernel
    whose page has connected and gone after ``closed_page_timeout``; a kernel no page has reached yet keeps the
    longer ``cull_idle_timeout``."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    pytest.importorskip("jupyter_server")
    from spikelab import serve_kernels

    m = serve_kernels.CappedKernelManager(cull_idle_timeout=300, closed_page_timeout=30)
    shut: list[str] = []

    async def shutdown(kernel_id, *args, **kwargs):
        shut.append(kernel_id)

    def cull() -> None:  # in a thread of its own: the browser tests' playwright may hold this thread's loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, m.cull_kernel_if_idle("k")).result()

    monkeypatch.setattr(m, "shutdown_kernel", shutdown)
    m._kernels["k"] = SimpleNamespace(execution_state="idle")
    m._kernel_connections["k"] = 0
    if had_page:
        m.notify_connect("k")
        m.notify_disconnect("k")
    m._alone_since["k"] = time.monotonic() - alone_s  # as if no page had been connected for alone_s seconds
    cull()
    assert shut == (["k"] if culled else [])
    m._kernels["k"] = SimpleNamespace(execution_state="busy")  # running cells: never culled, its clock restarts
    m._alone_since["k"] = time.monotonic() - 1000
    cull()
    assert shut == (["k"] if culled else []) and "k" not in m._alone_since


def test_the_kernel_manager_class_is_importable_by_its_configured_name():
    from traitlets.utils.importstring import import_item

    cls = import_item(serve.KERNEL_MANAGER)
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    assert issubclass(cls, AsyncMappingKernelManager)
    assert cls.max_kernels.default_value == 8 and serve.MAX_KERNELS == 8


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("0.0.0.0", False), ("::", False), ("192.0.2.1", False),
                                            ("not a host", False)])
def test_is_loopback(host, loopback):
    assert serve.is_loopback(host) is loopback


def test_dashboard_on_the_network_requires_a_token_and_warns(parser, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(serve, "run_server", lambda cmd, env: seen.update(cmd=cmd) or 0)
    monkeypatch.setattr(serve, "bind_problem", lambda host, port: None)  # no need to bind 0.0.0.0 here
    args = parser.parse_args(["dashboard", "neuron", "--host", "0.0.0.0", "--port", "9556", "--no-browser"])
    assert args.func(args) == 0
    tokens = [a.split("=", 1)[1] for a in seen["cmd"] if a.startswith("--Voila.token=")]
    assert len(tokens) == 1 and len(tokens[0]) >= 24  # generated, unguessable
    out, err = capsys.readouterr()
    assert f":9556/?token={tokens[0]}" in out  # the address to open, with the token
    assert err.startswith("warning: --host 0.0.0.0 lets other machines reach this server")

    args = parser.parse_args(["dashboard", "neuron", "--host", "0.0.0.0", "--token", "mine", "--no-browser"])
    assert args.func(args) == 0 and "--Voila.token=mine" in seen["cmd"]
    assert "?token=mine" in capsys.readouterr().out

    args = parser.parse_args(["dashboard", "neuron", "--no-browser", "--port", "9557"])  # loopback: neither
    monkeypatch.setattr(serve, "bind_problem", lambda host, port: None)
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert not any(a.startswith("--Voila.token") for a in seen["cmd"]) and "token" not in out and not err


def test_lab_on_the_network_warns(parser, labs, monkeypatch, capsys):
    monkeypatch.setattr(serve, "run_server", lambda cmd, env: 0)
    monkeypatch.setattr(serve, "bind_problem", lambda host, port: None)
    args = parser.parse_args(["lab", "--host", "0.0.0.0", "--no-browser"])
    assert args.func(args) == 0
    assert "warning: --host 0.0.0.0 lets other machines reach this server" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--cull-idle", "--max-kernels"])
def test_dashboard_counts_are_checked(parser, flag, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(["dashboard", flag, "-1"])
    assert f"{flag} must be an integer >= 0, got -1" in capsys.readouterr().err


FAKE_SERVER = """
import os, signal, sys, time
folder = sys.argv[1]
if sys.argv[2] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    def bye(signum, frame):
        open(os.path.join(folder, "terminated"), "w").write(str(signum))
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
open(os.path.join(folder, "server.pid"), "w").write(str(os.getpid()))
while True:
    time.sleep(0.1)
"""


def _wait_for(condition, what, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not yet reaped) is gone too
        return f.read().split(") ")[-1][0] != "Z"


@pytest.mark.parametrize("sig, behaviour", [(signal.SIGTERM, "obey"), (signal.SIGINT, "ignore")])
def test_a_signal_to_the_command_takes_its_server_down(tmp_path, sig, behaviour):
    (tmp_path / "fake_server.py").write_text(FAKE_SERVER)
    driver = ("import os, sys; from spikelab.serve import run_server; "
              f"sys.exit(run_server([sys.executable, {str(tmp_path / 'fake_server.py')!r}, {str(tmp_path)!r}, "
              f"{behaviour!r}], dict(os.environ), stop_wait_s=2))")
    proc = subprocess.Popen([sys.executable, "-c", driver], stderr=subprocess.PIPE, text=True)
    pid_file = tmp_path / "server.pid"
    _wait_for(lambda: pid_file.is_file() and pid_file.read_text(), "the fake server to start")
    server = int(pid_file.read_text())
    assert os.getpgid(server) == server  # its own session: a terminal's Ctrl+C reaches the command only
    proc.send_signal(sig)
    assert proc.wait(120) == 0
    assert not _pid_alive(server), "the server outlived the command"
    err = proc.stderr.read()
    assert "stopping the server and its kernels" in err
    if behaviour == "obey":
        assert (tmp_path / "terminated").read_text() == str(int(signal.SIGTERM))
    else:
        assert "did not stop within 2 s: killing it" in err


def test_voila_uses_spikelab_template_found_through_jupyter_path(monkeypatch):
    cmd = serve.voila_command(dashboards.path("neuron"), open_browser=False)
    assert f"--template={serve.VOILA_TEMPLATE}" in cmd
    monkeypatch.setenv("JUPYTER_PATH", "/elsewhere")
    env = serve.voila_env()
    assert env["JUPYTER_PATH"].split(os.pathsep) == [str(serve.TEMPLATE_ROOT), "/elsewhere"]
    assert serve.voila_env(env)["JUPYTER_PATH"] == env["JUPYTER_PATH"]  # applying it twice adds nothing
    folder = serve.TEMPLATE_ROOT / "voila" / "templates" / serve.VOILA_TEMPLATE
    assert json.loads((folder / "conf.json").read_text()) == {"base_template": "lab"}
    assert "extends 'voila/templates/lab/index.html.j2'" in (folder / "index.html.j2").read_text()


def test_template_drops_exactly_the_external_stylesheets():
    """Render the template's CSS block over a stand-in "lab" parent: external <link>s go, everything else stays."""
    import jinja2

    folder = serve.TEMPLATE_ROOT / "voila" / "templates" / serve.VOILA_TEMPLATE
    parent = ('{% block notebook_css %}<style>a{}</style>\n'
              '  <link rel="stylesheet" href="https://cdn.example/all.css" type="text/css" />\n'
              '  <link rel="stylesheet" href="static/local.css" type="text/css" />\n'
              '<script>var s = \'<link href="http://x">\';</script>\n{% endblock notebook_css %}')
    loader = jinja2.DictLoader({"voila/templates/lab/index.html.j2": parent,
                                "spikelab.j2": (folder / "index.html.j2").read_text()})
    html = jinja2.Environment(loader=loader).get_template("spikelab.j2").render()
    assert "cdn.example" not in html and "static/local.css" in html and "<style>a{}</style>" in html
    assert '<script>var s = \'<link href="http://x">\';</script>' in html  # only whole <link> lines are dropped


def test_dashboard_help_lists_the_labs_by_their_real_names(parser, capsys):
    with pytest.raises(SystemExit):
        parser.parse_args(["dashboard", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    real = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "labs").glob("[0-9]*.ipynb"))
    assert real and all(name in out for name in real) and "01_neuron," not in out and "01_neuron " not in out
    assert real == serve.lab_names() or set(real) <= set(serve.lab_names())
    for name in real:  # every name the help suggests is one that `spikelab dashboard NAME` finds
        assert serve.find_notebook(name).stem == name
