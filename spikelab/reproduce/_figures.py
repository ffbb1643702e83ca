"""Writing a reproduction's figures next to its table (used at the full size, whose figures docs/RESULTS.md shows)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def export_figures(figs: dict[str, Any], folder: Path, formats: tuple[str, ...] = ("svg", "png")) -> list[Path]:
    """Write each figure as ``folder/NAME.<format>``; without a local Chromium (static export needs one), as
    ``NAME.html`` instead. Returns the paths written."""
    from spikelab.viz import save_figure

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, fig in figs.items():
        try:
            for fmt in formats:
                written.append(save_figure(fig, folder / f"{name}.{fmt}", width=900, height=560,
                                           scale=2 if fmt == "png" else 1))
        except RuntimeError:  # no kaleido or no browser: keep an interactive file
            written.append(save_figure(fig, folder / f"{name}.html"))
    return written
