"""The run comparison panel: learning curves and final metrics of saved run folders."""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as W

from spikelab._checks import check_int
from spikelab.history import History
from spikelab.viz.figures import curves_figure
from spikelab.viz.widgets._base import _STYLE, Panel, _controls, _css, _guarded


class RunComparison(Panel):
    """Learning curves of saved runs side by side, with a table of their settings and final numbers.

    Reads the run folders under ``root`` (written by ``spikelab train`` or a :class:`TrainingPanel`); Refresh
    rescans, so a run still training shows its progress so far, and selects runs that appeared since the last scan.
    The newest ``preselect`` runs start selected. The state column is :func:`spikelab.training.run_state`
    (running, finished, stopped, failed, interrupted); a run that cannot be read is shown as unreadable. The table
    shows each run's recipe beside its results (a run without a stored neuron, from before it was recorded, shows
    its model's default neuron), under a line with the name format and defaults that ``spikelab train`` and the
    training panel share. The run list spans the width beside the controls, so long names fit; the plots span the
    panel's width, with the legend under them so that long names never narrow them (names longer than
    ``LEGEND_CHARS`` are shortened there, in the middle).
    """

    def __init__(self, *, root: str | os.PathLike = "runs", preselect: int = 3) -> None:
        super().__init__()
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a folder path, got {type(root).__name__}")
        self.preselect = check_int(preselect, "preselect", minimum=0)
        self.root = _css(W.Text(value=str(root), description="runs folder", style=_STYLE,
                                layout=W.Layout(width="320px")), "runs-root")
        self.refresh_button = _css(W.Button(description="Refresh", icon="refresh"), "refresh")
        self.export_button = _css(W.Button(description="Export NIR", icon="download",
                                           tooltip="write each selected run's network to <run>/model.nir"),
                                  "export-nir")
        self.select = _css(W.SelectMultiple(options=[], rows=8, description="runs", style=_STYLE,
                                            layout=W.Layout(flex="1", width="auto", min_width="320px")),
                           "run-select")
        self.level = _css(W.ToggleButtons(options=["epochs", "steps"], value="epochs", description="per",
                                          style={"description_width": "110px", "button_width": "90px"}), "level")
        self.table = _css(W.HTML(), "run-table")
        self.defaults = _css(W.HTML(shared_defaults_html()), "run-defaults")
        self.histories: dict[str, History] = {}
        out = self._output("run-curves", "340px")
        controls = _controls("Runs", self.root, self.refresh_button, self.level, self.export_button)
        # the run list takes the width beside the controls (long names fit) and the plots the page's whole width
        self.widget = _css(W.VBox([W.HBox([controls, self.select], layout=W.Layout(width="100%")),
                                   self.message, out, self.defaults, self.table]), "run-comparison")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.export_button.on_click(lambda _b: self.export_nir())
        self._hold = False
        self.select.observe(lambda _c: None if self._hold else self.redraw(), "value")
        self.level.observe(lambda _c: self.redraw(), "value")
        self.root.observe(lambda _c: self.refresh(), "value")
        self.refresh()

    @_guarded("reading the runs")
    def refresh(self) -> None:
        """Rescan the runs folder, keep the selection where the runs still exist, and redraw."""
        from spikelab.training import list_runs

        names = [p.name for p in list_runs(self.root.value)]
        known = set(self.select.options)
        keep = [n for n in self.select.value if n in names] + [n for n in names if known and n not in known]
        if not keep and self.preselect:
            keep = names[-self.preselect:]
        self._hold = True
        try:
            self.select.options = names
            self.select.value = tuple(keep)
        finally:
            self._hold = False
        self.redraw()

    @_guarded("drawing the runs")
    def redraw(self) -> None:
        """Redraw the curves and the table for the selected runs. A run that cannot be read is listed as
        ``unreadable`` and named in the message line; the others are drawn."""
        from spikelab.training import load_metrics, load_run, run_state

        root = Path(self.root.value)
        if not self.select.options:
            self.histories = {}
            self.outputs["run-curves"].outputs, self.table.value = (), ""
            self.report(f"no runs in {root} yet: train one in the playground or with `spikelab train`", "info")
            return
        if not self.select.value:
            self.report("select one or more runs to compare", "info")
            return
        histories, rows, broken = {}, [], []
        for n in self.select.value:
            try:
                h = load_run(root / n)
                m, state = load_metrics(root / n) or {}, run_state(root / n)
            except Exception as e:  # one corrupt run must not hide the others
                broken.append(f"{n} ({type(e).__name__}: {e})")
                rows.append([n] + [""] * (len(TABLE_COLUMNS) - 2) + ["unreadable"])
                continue
            histories[n] = h
            rows.append(_row(n, h, m, state))
        self.histories = histories
        if histories:
            fig = curves_figure(histories, level=self.level.value, title="learning curves")
            for tr in fig.data:
                tr.name = f"{_short(tr.meta['run'])} ({tr.meta['split']})"
            n_runs = len(histories) * (2 if self.level.value == "epochs" else 1)
            fig.update_layout(height=340 + 22 * n_runs, margin=dict(l=60, r=20, t=60, b=40),
                              legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
            self._draw("run-curves", fig)
        else:
            self.outputs["run-curves"].outputs = ()
        head = "".join(f"<th>{h}</th>" for h in TABLE_COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        self.table.value = (f'<table style="border-collapse:collapse; font-size:90%" cellpadding="4">'
                            f"<tr>{head}</tr>{body}</table>")
        if broken:
            self.report(f"cannot read {len(broken)} run(s), left out: {'; '.join(broken)}")
        else:
            self.clear_message()

    @_guarded("exporting to NIR")
    def export_nir(self) -> list[Path]:
        """The "Export NIR" button: write each selected run's network to ``<run>/model.nir`` (NIR, HDF5) with
        :func:`spikelab.nir.export_run` (see docs/NIR.md); returns the files written."""
        from spikelab.nir import export_run

        if not self.select.value:
            self.report("select the runs to export first", "info")
            return []
        written = []
        for name in self.select.value:
            out = Path(self.root.value) / name / "model.nir"
            export_run(out.parent, out)
            written.append(out)
        self.report("wrote " + ", ".join(str(p) for p in written) + " (NIR; see docs/NIR.md)", "info")
        return written


TABLE_COLUMNS = ("run", "dataset", "model", "neuron", "loss", "T", "batch", "lr", "epochs", "test acc",
                 "best test acc", "state")
LEGEND_CHARS = 40  # longer run names are shortened in the legend (kept whole in the list and the table)


def _row(name: str, h: History, metrics: dict[str, Any], state: str) -> list[Any]:
    """A run's row of the table: its recipe (:data:`TABLE_COLUMNS`), then its results."""
    from spikelab.recipe import describe_neuron

    cfg = h.config
    model = cfg.get("model", "")
    try:
        neuron = describe_neuron(cfg.get("neuron"), model or None)
    except Exception:  # a model this version does not know, or a malformed neuron: show what is stored
        neuron = str(cfg.get("neuron", ""))
    return [name, Path(str(cfg.get("dataset", ""))).name, model, neuron, cfg.get("loss", ""), cfg.get("T", ""),
            cfg.get("batch_size", ""), _fmt(cfg.get("lr")), len(h.epochs), _fmt(h.last.get("test_acc")),
            _fmt(metrics.get("best_test_acc")), state]


def _short(text: str, limit: int = LEGEND_CHARS) -> str:
    """``text`` cut in the middle with an ellipsis when longer than ``limit`` (a run's date stays readable)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def shared_defaults_html() -> str:
    """One line naming the run-name format and the defaults that ``spikelab train`` and the training panel share
    (:data:`spikelab.recipe.DEFAULTS`)."""
    from spikelab.recipe import DEFAULTS as d

    return ("<span style='color:#555; font-size:90%'>Runs from the training panel and from <code>spikelab "
            "train</code> share one name format, <code>MODEL-DATASET-YYYYmmdd-HHMMSS</code>, and one set of defaults: "
            f"{d['model']} on {d['dataset']}, T = {d['T']}, {d['loss'].upper()} loss, {d['optimizer']} lr {d['lr']:g} "
            f"with a {d['schedule']} schedule, batch {d['batch_size']}"
            + (" (the partial last batch dropped)" if d["drop_last"] else "")
            + f", {d['epochs']} epochs, seed {d['seed']}, the model's own neuron.</span>")


def _fmt(x: Any) -> str:
    return "" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)
