"""``spikelab dashboard`` and ``spikelab lab``: which notebook is served, the command lines, the port check."""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys

import nbformat
import pytest

from spikelab import dashboards, serve


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
    folder = serve.voila_command(dashboards.HERE, host="0.0.0.0")
    assert "--Voila.ip=0.0.0.0" in folder and "--no-browser" not in folder
    assert "--preheat_kernel=True" not in folder  # a folder has no single notebook to preheat


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
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("must not launch on a taken port"))
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
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("must not launch on a bad host"))
    for command in (["dashboard", "neuron"], ["lab", "--root", "."]):
        args = parser.parse_args([*command, "--host", host, "--port", "9555", "--no-browser"])
        assert args.func(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --host ") and message in err[0], err
        assert "already in use" not in err[0]


def test_dashboard_launches_voila_with_the_runs_folder(parser, monkeypatch, capsys, tmp_path):
    seen = {}

    def fake_call(cmd, env):
        seen.update(cmd=cmd, env=env)
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
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
    monkeypatch.setattr(subprocess, "call", lambda cmd, env: seen.update(cmd=cmd) or 0)
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
