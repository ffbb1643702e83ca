"""Panels that build and run ``spikelab`` command lines (lab 11): :class:`TrainCommand` (``spikelab train`` and
``torchrun``) and :class:`RunTools` (``spikelab eval --T`` and ``spikelab export-nir`` on a run folder)."""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as W

from spikelab.viz._command import (CommandJob, compare_with_reported, eval_command, export_nir_command, local_argv,
                                   nir_round_trip, parse_accuracy_vs_T, shell_line, train_command)
from spikelab.viz._live import Throttle
from spikelab.viz.widgets._base import _STYLE, Panel, _controls, _css, _dropdown, _guarded, _hint_figure, _slider

LOG_LINES = 14  # lines of a command's output shown under it
#: datasets offered, with what each needs (a folder for CIFAR and image folders)
DATASETS = ("digits", "fashion-mnist", "cifar10", "folder")
ALL = "all"


def _pre(text: str, css: str) -> W.HTML:
    return _css(W.HTML(value=f"<pre style='margin:0; white-space:pre-wrap'>{html.escape(text)}</pre>"), css)


def _limits(limit: int | str) -> list[int | str]:
    """The choices of the "images per split" control, holding ``limit`` (``"all"`` or a count >= 1)."""
    from spikelab._checks import check_int

    if limit != ALL:
        check_int(limit, "limit", minimum=1)
    return [ALL] + sorted({256, 1000, 6000, 20000} | ({limit} if limit != ALL else set()))


class _CommandPanel(Panel):
    """A command line shown as text, Start and Stop, the command's output (its last :data:`LOG_LINES` lines) and a
    ``job`` (:class:`~spikelab.viz._command.CommandJob`); ``on_finish`` callables get the panel once it ends."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.job = CommandJob()
        self.on_finish: list[Any] = []
        self.command = _pre("", f"{prefix}-line")
        self.log = _pre("", f"{prefix}-log")
        self.start_button = _css(W.Button(description="Start", icon="play", button_style="success"), f"{prefix}-start")
        self.stop_button = _css(W.Button(description="Stop", icon="stop", disabled=True), f"{prefix}-stop")
        self.start_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.job.stop())
        self._throttle = Throttle(0.5)

    def argv(self) -> list[str]:
        raise NotImplementedError

    def _show_command(self) -> None:
        try:
            line = html.escape(shell_line(self.argv()))
            self.command.value = f"<pre style='margin:0; white-space:pre-wrap'>$ {line}</pre>"
        except (TypeError, ValueError) as e:
            self.command.value = f"<pre style='margin:0'>(no command: {html.escape(str(e))})</pre>"

    def _show_log(self, force: bool = False) -> None:
        if self._throttle.ready(force):
            self.log.value = ("<pre style='margin:0; white-space:pre-wrap; max-height:20em; overflow:auto'>"
                              f"{html.escape(chr(10).join(self.job.lines[-LOG_LINES:]))}</pre>")

    def _runnable(self, argv: list[str]) -> str | None:
        """Why ``argv`` cannot run on this machine (None if it can)."""
        return None

    def _starting(self) -> None:
        """Called just before the command starts."""

    def _line(self, line: str) -> None:
        self._show_log()

    def _ended(self) -> str | None:
        """Called once the command has ended (from its thread); returns a line for the message (or None)."""
        return None

    def start(self) -> bool:
        """Run the command shown (what Start does); False, with the reason in the message line, if it cannot."""
        if self.job.running:
            self.report("a command is running: stop it first", "info")
            return False
        try:
            argv = self.argv()
        except (TypeError, ValueError) as e:
            self.report(f"cannot build the command: {e}")
            return False
        why = self._runnable(argv)
        if why is not None:
            self.report(why, "info")
            return False
        self.clear_message()
        self._starting()
        argv = self.argv()  # as _starting left it (a training run gets its --name there)
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.job.start(local_argv(argv), on_line=self._line, on_done=lambda _job: self._done())
        self.report("running...", "info")
        return True

    def _done(self) -> None:
        self._show_log(force=True)
        self.start_button.disabled, self.stop_button.disabled = False, True
        try:
            note = self._ended()
        except Exception as e:  # a panel never raises into the page
            self.report(f"reading the result failed: {type(e).__name__}: {e}")
        else:
            if self.job.state == "failed":
                self.report(f"the command failed: {self.job.error}")
            else:
                self.report(note or f"{self.job.state} (exit status {self.job.returncode})", "info")
        for fn in self.on_finish:
            fn(self)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the command (and the panel's update after it) has ended within ``timeout`` seconds."""
        return self.job.wait(timeout)


class TrainCommand(_CommandPanel):
    """Settings on the left, the ``spikelab train`` (or ``torchrun``) command they make, Start/Stop to run it here,
    its output and its learning curves read live from the run folder it writes (``runs_dir/NAME``). With
    ``reported`` (e.g. :data:`spikelab.viz._command.README_FASHION_MNIST`), a line compares each finished run with it.

    Start runs the command when this machine can: one process (or several on CPU, up to its cores), a dataset
    that loads here, and no GPU asked for where there is none; otherwise the message line says why and the
    command is there to copy to a machine that can. ``run_dir`` is the folder of the last run started.
    """

    def __init__(self, *, runs_dir: str | os.PathLike = "runs", model: str = "conv-small", dataset: str = "digits",
                 T: int = 4, epochs: int = 2, batch_size: int = 128, limit: int | str = ALL, processes: int = 1,
                 data_root: str = "", device: str = "cpu", reported: dict[str, Any] | None = None) -> None:
        from spikelab import models

        super().__init__("train-command")
        self.runs_dir = Path(runs_dir)
        self.run_dir: Path | None = None
        self.reported = reported
        self.comparison = _css(W.HTML(""), "train-command-compare")
        self.controls = dict(
            model=_dropdown("cmd-model", "model", models.names(), model),
            dataset=_dropdown("cmd-dataset", "dataset", DATASETS, dataset),
            data_root=_css(W.Text(value=data_root, description="data root", placeholder="folder (cifar10, folder)",
                                  style=_STYLE, layout=W.Layout(width="320px")), "cmd-data-root"),
            size=_dropdown("cmd-size", "image size", [("keep", 0), ("32", 32), ("64", 64), ("128", 128),
                                                       ("224", 224)], 0),
            T=_slider(W.IntSlider, "cmd-T", "T (steps)", min=1, max=8, value=T),
            epochs=_slider(W.IntSlider, "cmd-epochs", "epochs", min=1, max=30, value=epochs),
            batch_size=_dropdown("cmd-batch", "batch (global)", [32, 64, 128, 256, 512, 1024], batch_size),
            limit=_dropdown("cmd-limit", "images per split", _limits(limit), limit),
            processes=_slider(W.IntSlider, "cmd-processes", "processes", min=1, max=8, value=processes),
            device=_dropdown("cmd-device", "device", ["cpu", "cuda", "auto"], device),
        )
        for w in self.controls.values():
            w.observe(lambda _c: self._show_command(), "value")
        self._name = None
        out = self._output("command-curves", "300px")
        self._draw("command-curves", _hint_figure("the run's learning curves appear here once it has trained an "
                                                  "epoch", title="learning curves"))
        left = _controls("spikelab train", *self.controls.values(), W.HBox([self.start_button, self.stop_button]))
        self.widget = _css(W.HBox([left, W.VBox([self.command, self.message, out, self.comparison, self.log],
                                                layout=W.Layout(flex="1", min_width="0"))]), "train-command")
        self._show_command()

    def settings(self) -> dict[str, Any]:
        c = {k: w.value for k, w in self.controls.items()}
        return dict(model=c["model"], dataset=c["dataset"], T=c["T"], epochs=c["epochs"],
                    batch_size=c["batch_size"], limit=None if c["limit"] == ALL else c["limit"],
                    data_root=c["data_root"].strip() or None, size=c["size"] or None, processes=c["processes"],
                    device=c["device"])

    def argv(self) -> list[str]:
        """The command line of the settings (``--out`` the runs folder; ``--name`` once a run has started)."""
        return train_command(**self.settings(), out=self.runs_dir, name=self._name, progress=False)

    def _runnable(self, argv: list[str]) -> str | None:
        import torch

        from spikelab import data

        s = self.settings()
        if s["device"] == "cuda" and not torch.cuda.is_available():
            return "no GPU here: copy the command to a machine with one (or pick cpu)"
        if s["processes"] > 1 and s["device"] != "cuda" and s["processes"] > (os.cpu_count() or 1):
            return f"{s['processes']} processes on {os.cpu_count()} CPU cores: copy the command to a bigger machine"
        if s["dataset"] in ("digits", "fashion-mnist"):
            if s["data_root"] is None and not data.available(s["dataset"]):
                return f"{s['dataset']} is not installed here (apt-get install dataset-fashion-mnist)"
        elif s["data_root"] is None or not Path(s["data_root"]).expanduser().is_dir():
            return f"{s['dataset']} needs its folder as data root: copy the command to the machine that holds it"
        return None

    def _starting(self) -> None:
        from spikelab.recipe import run_name

        s = self.settings()
        self._name = run_name(s["model"], s["dataset"])
        self.run_dir = self.runs_dir / self._name
        self._show_command()
        self._epochs_drawn = 0
        self._draw("command-curves", _hint_figure("the run's learning curves appear here once it has trained an "
                                                  "epoch", title="learning curves"))

    def start(self) -> bool:
        started = super().start()
        self._name = None if not started else self._name
        return started

    def _line(self, line: str) -> None:
        super()._line(line)
        if line.startswith("epoch "):
            self._curves()

    def _curves(self) -> None:
        from spikelab.training import load_run
        from spikelab.viz.figures import curves_figure

        if self.run_dir is None or not (self.run_dir / "history.jsonl").is_file():
            return
        h = load_run(self.run_dir)
        if h.epochs:
            self._draw("command-curves", curves_figure({self.run_dir.name: h}, level="epochs",
                                                       title=f"learning curves of {self.run_dir.name}"))

    def _ended(self) -> str | None:
        self._name = None
        self._show_command()
        self._curves()
        if self.reported is not None and self.run_dir is not None and (self.run_dir / "config.json").is_file():
            import json

            config = json.loads((self.run_dir / "config.json").read_text())
            line = compare_with_reported(config, self.last_metrics(), self.reported)
            self.comparison.value = f"<p>{html.escape(line)}</p>"
        return None if self.run_dir is None else f"{self.job.state}: run folder {self.run_dir}"

    def last_metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` of the last run started (None before it has ended)."""
        from spikelab.training import load_metrics

        return None if self.run_dir is None else load_metrics(self.run_dir)


class RunTools(_CommandPanel):
    """For one run folder: ``spikelab eval RUN --T ...`` (its accuracy against the number of time steps, drawn) or
    ``spikelab export-nir RUN RUN/model.nir``, chosen with ``action``. ``rows`` holds the last table of accuracy
    against T, drawn beside ``reference`` (``{label: {T: accuracy}}``, e.g. docs/RESULTS.md's numbers); ``nir_file``
    the last file exported and ``nir_check`` its round trip (:func:`spikelab.viz._command.nir_round_trip`)."""

    def __init__(self, *, runs_dir: str | os.PathLike = "runs", Ts: str = "1,2,4,6,8", limit: int | None = None,
                 reference: dict[str, Any] | None = None) -> None:
        super().__init__("run-tools")
        self.runs_dir = Path(runs_dir)
        self.limit = limit
        self.reference = reference
        self.nir_check: dict[str, Any] | None = None
        self.rows: list[dict[str, Any]] = []
        self.nir_file: Path | None = None
        self.run = _dropdown("tools-run", "run", [], None)
        self.action = _css(W.ToggleButtons(options=["eval --T", "export-nir"], value="eval --T", description="do",
                                           style={"description_width": "110px", "button_width": "90px"}),
                           "tools-action")
        self.Ts = _css(W.Text(value=Ts, description="T values", style=_STYLE, layout=W.Layout(width="320px")),
                       "tools-Ts")
        self.refresh_button = _css(W.Button(description="Refresh runs", icon="refresh"), "tools-refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        for w in (self.run, self.action, self.Ts):
            w.observe(lambda _c: self._show_command(), "value")
        out = self._output("accuracy-vs-T", "300px")
        self._draw("accuracy-vs-T", _hint_figure("pick a run and press Start: its accuracy at each T appears here",
                                                 title="accuracy against T"))
        left = _controls("a trained run", self.run, self.refresh_button, self.action, self.Ts,
                         W.HBox([self.start_button, self.stop_button]))
        self.widget = _css(W.HBox([left, W.VBox([self.command, self.message, out, self.log],
                                                layout=W.Layout(flex="1", min_width="0"))]), "run-tools")
        self.refresh()

    @_guarded("reading the runs")
    def refresh(self, select: str | os.PathLike | None = None) -> None:
        """Rescan the runs folder for finished runs (those with a checkpoint); select ``select`` (a run folder or
        name) if given, else keep the selection, else take the newest."""
        from spikelab.training import list_runs

        names = [p.name for p in list_runs(self.runs_dir) if (p / "checkpoint.pt").is_file()]
        keep = Path(select).name if select is not None else self.run.value
        self.run.options = names
        self.run.value = keep if keep in names else (names[-1] if names else None)
        self._show_command()

    def argv(self) -> list[str]:
        if self.run.value is None:
            raise ValueError("no trained run in the runs folder yet")
        run = self.runs_dir / self.run.value
        if self.action.value == "export-nir":
            return export_nir_command(run, run / "model.nir")
        from spikelab.cli_tet import parse_int_list

        return eval_command(run, Ts=parse_int_list(self.Ts.value, "T values"), limit=self.limit, progress=False)

    def _ended(self) -> str | None:
        if self.job.state != "done":
            return None
        if "export-nir" in self.job.argv:
            self.nir_file = Path(self.job.argv[-1])
            self.nir_check = c = nir_round_trip(self.nir_file.parent, self.nir_file, n=self.limit or 64)
            return (f"wrote {self.nir_file} ({c['nodes']} NIR nodes); loaded back, its logits differ from the "
                    f"run's by at most {c['max_diff']:.1e} on {c['n']} test images")
        from spikelab.viz.figures import accuracy_vs_T_figure

        self.rows = parse_accuracy_vs_T(self.job.output)
        run = Path(self.job.argv[4]).name
        self._draw("accuracy-vs-T", accuracy_vs_T_figure({run: self.rows}, reference=self.reference,
                                                         title=f"accuracy against T: {run}"))
        return f"done: accuracy of {run} at T = {', '.join(str(r['T']) for r in self.rows)}"
