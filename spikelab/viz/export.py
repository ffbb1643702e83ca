"""Save a figure to PNG, SVG, PDF or standalone HTML, offline and atomically.

PNG/SVG/PDF go through kaleido, which drives a locally installed Chromium (on Debian: ``apt-get install
chromium``); nothing is ever downloaded. HTML embeds plotly.js, so the file opens without a network. The file is
written to a temporary name in the target folder and moved into place with ``os.replace``, so a reader never sees a
half-written file.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from plotly.basedatatypes import BaseFigure

from spikelab._checks import check_int, check_positive

__all__ = ["save_figure", "find_browser", "FORMATS"]

FORMATS = (".png", ".svg", ".pdf", ".html")
CHROMIUM_HINT = (
    "static export (PNG/SVG/PDF) needs a local Chromium for kaleido; install it with "
    "`apt-get install chromium` (Debian/Ubuntu), or save as .html, which needs no browser"
)
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    """Path of the Chromium-based browser kaleido would drive, or None if there is none (nothing is downloaded)."""
    try:
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False)
    except ImportError:
        pass
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env
    for name in _BROWSER_NAMES:
        if path := shutil.which(name):
            return path
    return None


def _render_image(fig: BaseFigure, fmt: str, width: int | None, height: int | None, scale: float) -> bytes:
    try:
        import kaleido  # noqa: F401  (plotly imports it lazily; fail here with a clear message)
    except ImportError:
        raise RuntimeError("static export needs the kaleido package: pip install 'kaleido>=1'") from None
    if find_browser() is None:
        raise RuntimeError(CHROMIUM_HINT)
    import plotly.io as pio

    try:
        return pio.to_image(fig, format=fmt, width=width, height=height, scale=scale)
    except RuntimeError as e:
        if "chrome" in str(e).lower():
            raise RuntimeError(CHROMIUM_HINT) from e
        raise


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure(
    fig: Any,
    path: str | os.PathLike,
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = 1,
) -> Path:
    """Write ``fig`` to ``path``, the format chosen by the extension: ``.png``, ``.svg``, ``.pdf`` or ``.html``.

    Args:
        fig: a plotly figure (``go.Figure`` or ``go.FigureWidget``).
        path: target file; its folder must exist. An existing file is replaced.
        width: image width in layout pixels (default: the figure's, else plotly's 700).
        height: image height in layout pixels (default: the figure's, else plotly's 500).
        scale: resolution multiplier for PNG (a 700 px wide figure at ``scale=2`` is 1400 px wide).

    Returns:
        The path written.

    Raises:
        ValueError: unknown extension (the message lists the valid ones).
        FileNotFoundError: the folder does not exist.
        RuntimeError: PNG/SVG/PDF without kaleido or without a local Chromium (``apt-get install chromium``).
    """
    if not isinstance(fig, BaseFigure):
        raise TypeError(f"fig must be a plotly figure (go.Figure), got {type(fig).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or path, got {type(path).__name__}")
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"path must end in one of {', '.join(FORMATS)}; got {path.name!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder does not exist: {path.parent}")
    width = None if width is None else check_int(width, "width", minimum=1)
    height = None if height is None else check_int(height, "height", minimum=1)
    scale = check_positive(scale, "scale")
    if ext == ".html":
        html = fig.to_html(include_plotlyjs=True, full_html=True,
                           default_width=f"{width}px" if width else "100%",
                           default_height=f"{height}px" if height else "100%")
        data = html.encode("utf-8")
    else:
        data = _render_image(fig, ext[1:], width, height, scale)
    _write_atomic(path, data)
    return path
