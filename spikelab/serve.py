"""The ``spikelab dashboard`` and ``spikelab lab`` commands: serve a Voila dashboard or JupyterLab on ``labs/``.

``spikelab dashboard`` serves the playground; ``spikelab dashboard NAME`` serves another shipped dashboard
(:func:`spikelab.dashboards.names`), a notebook path, or a lab found by stem (``01_one_neuron`` or
``labs/01_one_neuron.ipynb``). Both commands bind to 127.0.0.1 unless ``--host`` says otherwise, check that the port
is free before launching, and never reach the network (JupyterLab's news and update checks are off; Voila pages
use spikelab's template, :data:`VOILA_TEMPLATE`, which asks no CDN for anything).

The server cleans up after itself: a dashboard page's kernel is shut down :data:`CLOSED_PAGE_S` seconds after its
page closes, or after ``--cull-idle`` seconds if no page ever connected to it (its training stopped, the run folder
left "stopped"), at most ``--max-kernels`` kernels run at once (:mod:`spikelab.serve_kernels`), and SIGTERM,
SIGINT or SIGHUP to the command stops the server it started, with its kernels, before the command exits. A
``--host`` other than this machine's loopback address exposes kernels that run code: the command then warns, and
the dashboard requires a token (``--token``, or one it generates and prints).
"""
from __future__ import annotations

import argparse
import errno
import importlib.util
import ipaddress
import os
import secrets
import signal
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
CULL_IDLE_S = 300  # a kernel without a page for this long is shut down
CULL_INTERVAL_S = 30  # how often the server looks for such kernels
CLOSED_PAGE_S = 30  # a kernel whose page has closed is shut down after this long
MAX_KERNELS = 8  # kernels (about 300 MB each) alive at once, the preheated spare included
KERNEL_SHUTDOWN_WAIT_S = 10  # a kernel asked to exit gets this long (its training stops) before it is killed
STOP_WAIT_S = 30  # how long the command waits for its server to stop before killing it
KERNEL_MANAGER = "spikelab.serve_kernels.CappedKernelManager"
#: spikelab's Voila template ("lab" without the Font Awesome CDN links), found through ``JUPYTER_PATH``
VOILA_TEMPLATE = "spikelab"
TEMPLATE_ROOT = Path(__file__).resolve().parent / "share"


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
    a notebook in a labs folder (``"01_one_neuron"``; ``"labs/01_one_neuron.ipynb"`` also matches by stem). Raises
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


def lab_names() -> list[str]:
    """The stems of the lab notebooks found (``01_one_neuron``, ...), in order, without duplicates."""
    return sorted({nb.stem for d in labs_dirs() for nb in d.glob("[0-9]*.ipynb")})


def voila_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with spikelab's template folder first on ``JUPYTER_PATH``,
    so that Voila finds :data:`VOILA_TEMPLATE`. Run :func:`voila_command`'s command with it."""
    out = dict(os.environ if env is None else env)
    paths = [str(TEMPLATE_ROOT)] + [p for p in out.get("JUPYTER_PATH", "").split(os.pathsep)
                                    if p and p != str(TEMPLATE_ROOT)]
    out["JUPYTER_PATH"] = os.pathsep.join(paths)
    return out


def is_loopback(host: str) -> bool:
    """True if every address ``host`` resolves to is this machine's loopback (only this machine can connect)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)
    except (OSError, UnicodeError, ValueError):
        return False


def is_dashboard(notebook: str | os.PathLike) -> bool:
    """True if ``notebook`` is one of spikelab's shipped dashboards (:func:`spikelab.dashboards.names`)."""
    path = Path(notebook)
    return path.is_file() and path.suffix == ".ipynb" and path.resolve().parent == dashboards.HERE.resolve()


def voila_command(notebook: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DASHBOARD_PORT,
                  open_browser: bool = True, preheat: bool = True, cull_idle_s: int = CULL_IDLE_S,
                  cull_interval_s: int | None = None, max_kernels: int = MAX_KERNELS,
                  token: str | None = None, closed_page_s: int = CLOSED_PAGE_S) -> list[str]:
    """The Voila command line serving ``notebook`` (a file, or a folder of notebooks) with spikelab's template; run
    it with the environment of :func:`voila_env`.

    How pages render: one of spikelab's dashboards (one panel, one widget per page) is preheated (``preheat``: a
    kernel runs it ahead of the first visitor, whose page is then ready at once). Any other page (a lab, a folder, a
    notebook of your own) is rendered progressively: the page opens at once and each cell's output appears as the
    kernel reaches it. A page that shows many widgets must not be rendered in one go: Voila's one-go page then asks
    for every widget's model at once, ipywidgets' ``get_model`` gives each request a fixed 2 s, and while the
    first widgets draw their plotly figures the last requests run out ("Error displaying widget: model not
    found"). Progressive rendering adds each output only once its model has arrived.

    Kernels are managed by :class:`spikelab.serve_kernels.CappedKernelManager`: one whose page has closed is shut
    down after ``closed_page_s`` seconds, one whose page never connected after ``cull_idle_s`` seconds (checked
    every ``cull_interval_s`` seconds, default a third of ``cull_idle_s`` and at most ``CULL_INTERVAL_S``;
    ``cull_idle_s=0`` never culls), and at most
    ``max_kernels`` run at once (0: no cap). A kernel asked to shut down gets ``KERNEL_SHUTDOWN_WAIT_S`` seconds to
    stop its training. ``token``: the token every page needs (None: no token, for a loopback ``host`` only).
    """
    if cull_interval_s is None:
        cull_interval_s = min(CULL_INTERVAL_S, max(cull_idle_s // 3, 1))
    for name, value in (("cull_idle_s", cull_idle_s), ("cull_interval_s", cull_interval_s),
                        ("max_kernels", max_kernels), ("closed_page_s", closed_page_s)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    cmd = [sys.executable, "-m", "voila", str(notebook), f"--port={port}", f"--Voila.ip={host}",
           "--Voila.port_retries=0", "--VoilaExecutor.timeout=600", f"--template={VOILA_TEMPLATE}",
           "--VoilaConfiguration.extension_denylist=jupyterlab-jupytext"]
    cmd += [f"--VoilaConfiguration.multi_kernel_manager_class={KERNEL_MANAGER}",
            f"--CappedKernelManager.cull_idle_timeout={cull_idle_s}",
            f"--CappedKernelManager.cull_interval={max(cull_interval_s, 1)}",
            f"--CappedKernelManager.max_kernels={max_kernels}",
            f"--CappedKernelManager.closed_page_timeout={closed_page_s}",
            f"--KernelManager.shutdown_wait_time={KERNEL_SHUTDOWN_WAIT_S}"]
    if token is not None:
        cmd.append(f"--Voila.token={token}")
    if preheat and is_dashboard(notebook):  # one kernel runs the notebook ahead of the first visitor
        cmd += ["--preheat_kernel=True", "--pool_size=1"]
    else:  # Voila refuses the two together
        cmd.append("--VoilaConfiguration.progressive_rendering=True")
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


class _Stop(Exception):
    """A signal asked the command to stop its server."""


def run_server(cmd: Sequence[str], env: dict[str, str], *, stop_wait_s: float = STOP_WAIT_S) -> int:
    """Run the server ``cmd`` until it exits, or until this process gets SIGTERM, SIGINT or SIGHUP: the server is
    then sent SIGTERM (Voila and Jupyter shut their kernels down on it) and waited for up to ``stop_wait_s``
    seconds, then killed with its process group. Returns the server's exit status (0 after a stop by signal).

    The server runs in its own session, so Ctrl+C in a terminal reaches this process only, which stops the server
    once (Jupyter would otherwise ask for a confirmation).
    """
    def stop(signum: int, _frame: object) -> None:
        raise _Stop(signum)

    caught = (signal.SIGTERM, signal.SIGINT) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())
    previous = {s: signal.signal(s, stop) for s in caught}
    proc = None
    try:
        proc = subprocess.Popen(list(cmd), env=env, start_new_session=True)
        return proc.wait()
    except (_Stop, KeyboardInterrupt):
        if proc is None:
            return 0
        for s in caught:  # a second signal must not cut the clean-up short
            signal.signal(s, signal.SIG_IGN)
        print("stopping the server and its kernels...", file=sys.stderr, flush=True)
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(stop_wait_s)
        except subprocess.TimeoutExpired:
            print(f"the server did not stop within {stop_wait_s:g} s: killing it", file=sys.stderr, flush=True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _count_arg(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= 0, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= 0, got {value}")
        return value

    return parse


def _launch(cmd: Sequence[str], *, module: str, host: str, port: int, what: str, env: dict[str, str],
            token: str | None = None) -> int:
    if importlib.util.find_spec(module) is None:
        print(f"error: {module} is not installed; install the lab extra: pip install 'spikelab[lab]'",
              file=sys.stderr)
        return 1
    problem = bind_problem(host, port)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if not is_loopback(host):
        print(f"warning: --host {host} lets other machines reach this server, and its kernels run any code a "
              "visitor sends. Share the address only with people you trust, on a network you trust"
              + (", and keep the token to yourself." if token else "."), file=sys.stderr, flush=True)
    query = f"?token={token}" if token else ""
    shown = host if host not in ("0.0.0.0", "::") else f"{socket.gethostname()}"
    print(f"serving {what} at http://{shown}:{port}/{query}  (Ctrl+C to stop)", flush=True)
    return run_server(cmd, env)


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
    token = args.token
    if token is None and not is_loopback(args.host):  # kernels run code: never open to the network without one
        token = secrets.token_urlsafe(24)
    cmd = voila_command(nb, host=args.host, port=args.port, open_browser=not args.no_browser,
                        cull_idle_s=args.cull_idle, max_kernels=args.max_kernels, token=token)
    return _launch(cmd, module="voila", host=args.host, port=args.port, what=f"the {nb.stem} dashboard",
                   env=voila_env(_child_env(args.runs)), token=token)


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
    labs = lab_names()
    example = labs[0] if labs else "01_one_neuron"
    p = subparsers.add_parser(
        "dashboard", help="serve a Voila dashboard (default: the spiking-network playground)",
        description=f"Serve a dashboard with Voila. NAME is one of: {names}; or a lab notebook by its name"
                    + (f" ({', '.join(labs)})" if labs else "")
                    + f", or a path such as labs/{example}.ipynb.")
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="dashboard or lab (default: playground)")
    p.add_argument("--cull-idle", type=_count_arg("--cull-idle"), default=CULL_IDLE_S, metavar="SECONDS",
                   help=f"shut a page's kernel down (and stop its training) once no page has been connected to it "
                        f"for this long, at most {CLOSED_PAGE_S} s after its page closed (default {CULL_IDLE_S}; "
                        f"0: never)")
    p.add_argument("--max-kernels", type=_count_arg("--max-kernels"), default=MAX_KERNELS, metavar="N",
                   help=f"most kernels at once, about 300 MB each; more pages are refused with a message "
                        f"(default {MAX_KERNELS}; 0: no limit)")
    p.add_argument("--token", default=None,
                   help="token every page needs (default: none on 127.0.0.1; a generated one, printed, for any "
                        "other --host)")
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
