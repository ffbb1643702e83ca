"""The ``spikelab dashboard`` and ``spikelab lab`` commands: serve a Voila dashboard or JupyterLab on ``labs/``.

``spikelab dashboard`` serves the playground; ``spikelab dashboard NAME`` serves another shipped dashboard
(:func:`spikelab.dashboards.names`), a notebook path, or a lab found by stem (``01_neuron`` or
``labs/01_neuron.ipynb``). Both commands bind to 127.0.0.1 unless ``--host`` says otherwise, check that the port
is free before launching, and never reach the network (JupyterLab's news and update checks are off).
"""
from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from spikelab import dashboards

DEFAULT_HOST = "127.0.0.1"
DASHBOARD_PORT = 8866
LAB_PORT = 8888
LABS_ENV = "SPIKELAB_LABS"
RUNS_ENV = "SPIKELAB_RUNS_DIR"


def labs_dirs() -> list[Path]:
    """Where lab notebooks are looked for, in order: ``$SPIKELAB_LABS``, ``./labs``, the source checkout's labs/."""
    dirs = []
    if os.environ.get(LABS_ENV):
        dirs.append(Path(os.environ[LABS_ENV]))
    dirs.append(Path.cwd() / "labs")
    dirs.append(Path(__file__).resolve().parents[1] / "labs")
    seen, out = set(), []
    for d in dirs:
        key = d.resolve()
        if key not in seen and d.is_dir():
            seen.add(key)
            out.append(d)
    return out


def find_notebook(name: str | None = None) -> Path:
    """The notebook that ``spikelab dashboard NAME`` serves.

    ``None`` is the playground; a shipped dashboard name (``"neuron"``); an existing ``.ipynb`` path; or the stem of
    a notebook in a labs folder (``"01_neuron"``; ``"labs/01_neuron.ipynb"`` also matches by stem). Raises
    ``ValueError`` listing what is available when nothing matches.
    """
    if name is None:
        return dashboards.path(dashboards.names()[0])
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if name in dashboards.DASHBOARDS:
        return dashboards.path(name)
    p = Path(name).expanduser()
    if p.suffix == ".ipynb" and p.is_file():
        return p.resolve()
    stem = p.stem if p.suffix == ".ipynb" else p.name
    labs = [nb for d in labs_dirs() for nb in sorted(d.glob("*.ipynb"))]
    for nb in labs:
        if nb.stem == stem:
            return nb.resolve()
    known = dashboards.names() + sorted({nb.stem for nb in labs})
    raise ValueError(f"no dashboard or lab notebook named {name!r}; available: {', '.join(known)}")


def bind_problem(host: str, port: int) -> str | None:
    """Why a server could not bind ``(host, port)`` now, as a message naming the culprit; None if it could.

    An unresolvable or malformed ``--host``, an address this machine does not have, a port taken by another server
    and a port that needs privileges are each named as such.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        return (f"--host {host!r} is not an IP address or a host name this machine can resolve ({reason}); "
                f"use {DEFAULT_HOST} (this machine only), 0.0.0.0 (every interface) or one of its addresses")
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if sys.platform != "win32":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT does not block
        try:
            s.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another dashboard or server?). "
                        "Stop it, or choose another port with --port.")
            if err.errno == errno.EADDRNOTAVAIL:
                return (f"--host {host!r} is not an address of this machine, so nothing can listen there; use "
                        f"{DEFAULT_HOST}, 0.0.0.0 or one of this machine's addresses")
            if err.errno == errno.EACCES:
                return f"no permission to listen on port {port} (ports below 1024 need privileges); choose another --port"
            return f"cannot listen on {host} port {port}: {err.strerror or err}"
    return None


def port_free(host: str, port: int) -> bool:
    """True if a server could bind ``(host, port)`` now (see :func:`bind_problem` for why not)."""
    return bind_problem(host, port) is None


def voila_command(notebook: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DASHBOARD_PORT,
                  open_browser: bool = True, preheat: bool = True) -> list[str]:
    """The Voila command line serving ``notebook`` (a file, or a folder of notebooks)."""
    cmd = [sys.executable, "-m", "voila", str(notebook), f"--port={port}", f"--Voila.ip={host}",
           "--Voila.port_retries=0", "--VoilaExecutor.timeout=600",
           "--VoilaConfiguration.extension_denylist=jupyterlab-jupytext"]
    if preheat and Path(notebook).is_file():  # one kernel runs the notebook ahead of the first visitor
        cmd += ["--preheat_kernel=True", "--pool_size=1"]
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def lab_command(root: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = LAB_PORT,
                open_browser: bool = True) -> list[str]:
    """The JupyterLab command line opening ``root``, with news and update checks off (it works offline)."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", f"--ServerApp.ip={host}",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def _check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 1..65535, got {port}")
    return port


def _port_arg(text: str) -> int:
    try:
        return _check_port(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None


def _launch(cmd: Sequence[str], *, module: str, host: str, port: int, what: str, env: dict[str, str]) -> int:
    if importlib.util.find_spec(module) is None:
        print(f"error: {module} is not installed; install the lab extra: pip install 'spikelab[lab]'",
              file=sys.stderr)
        return 1
    problem = bind_problem(host, port)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(f"serving {what} at http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    try:
        return subprocess.call(list(cmd), env=env)
    except KeyboardInterrupt:
        return 0


def _child_env(runs: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env[RUNS_ENV] = str(Path(runs or env.get(RUNS_ENV) or "runs").resolve())
    return env


def _cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        nb = find_notebook(args.name)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cmd = voila_command(nb, host=args.host, port=args.port, open_browser=not args.no_browser)
    return _launch(cmd, module="voila", host=args.host, port=args.port, what=f"the {nb.stem} dashboard",
                   env=_child_env(args.runs))


def _cmd_lab(args: argparse.Namespace) -> int:
    dirs = labs_dirs()
    if args.root is None and not dirs:
        print("error: no labs/ folder found here; run from the spikelab checkout or pass --root", file=sys.stderr)
        return 2
    root = Path(args.root) if args.root is not None else dirs[0]
    if not root.is_dir():
        print(f"error: --root must be an existing folder, got {str(root)!r}", file=sys.stderr)
        return 2
    cmd = lab_command(root.resolve(), host=args.host, port=args.port, open_browser=not args.no_browser)
    return _launch(cmd, module="jupyterlab", host=args.host, port=args.port, what=f"JupyterLab on {root}",
                   env=_child_env(args.runs))


def add_serve_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dashboard`` and ``lab`` subcommands to the ``spikelab`` parser."""
    names = ", ".join(dashboards.names())
    p = subparsers.add_parser(
        "dashboard", help="serve a Voila dashboard (default: the spiking-network playground)",
        description=f"Serve a dashboard with Voila. NAME is one of: {names}; or a lab notebook (by stem, e.g. "
                    "01_neuron, or a path such as labs/01_neuron.ipynb).")
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="dashboard or lab (default: playground)")
    lab = subparsers.add_parser("lab", help="open JupyterLab on the labs/ notebooks",
                                description="Open JupyterLab on labs/ (offline: no news or update checks).")
    lab.add_argument("--root", default=None, help="folder to open (default: ./labs or the checkout's labs/)")
    for sub, port, func in ((p, DASHBOARD_PORT, _cmd_dashboard), (lab, LAB_PORT, _cmd_lab)):
        sub.add_argument("--port", type=_port_arg, default=port, help=f"port to serve on (default {port})")
        sub.add_argument("--host", default=DEFAULT_HOST,
                         help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
        sub.add_argument("--no-browser", action="store_true", help="do not open a browser")
        sub.add_argument("--runs", default=None,
                         help=f"folder of run folders the panels write and compare (default ./runs; ${RUNS_ENV})")
        sub.set_defaults(func=func)
