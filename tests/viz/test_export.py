"""Static export: HTML without a browser; PNG/SVG/PDF through kaleido and the local Chromium, never a download."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import plotly.graph_objects as go
import pytest

from spikelab.viz import export
from spikelab.viz.export import save_figure

CHROMIUM = Path("/usr/bin/chromium")


def _require_chromium() -> None:
    """Skip without Debian's chromium, except on CI (CI=true), where its absence is a failure."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("/usr/bin/chromium is missing on CI: apt-get install chromium")
    pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")


@pytest.fixture
def fig() -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 3, 2], name="probe-trace"))


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Fail loudly if anything tries to fetch a browser."""
    import plotly.io as pio

    def refuse(*args, **kwargs):
        raise AssertionError("a browser download was attempted")

    monkeypatch.setattr(pio, "get_chrome", refuse, raising=False)
    try:
        import kaleido
    except ImportError:
        return
    monkeypatch.setattr(kaleido, "get_chrome", refuse, raising=False)
    monkeypatch.setattr(kaleido, "get_chrome_sync", refuse, raising=False)


def _only(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_html_is_self_contained_and_replaces_atomically(fig, tmp_path):
    target = tmp_path / "figure.html"
    target.write_text("old")
    out = save_figure(fig, str(target), width=300, height=200)
    assert out == target
    text = target.read_text(encoding="utf-8")
    assert "<html>" in text[:100] and "probe-trace" in text
    assert 'src="http' not in text and len(text) > 1_000_000  # plotly.js embedded: opens offline
    assert "300px" in text
    assert _only(tmp_path) == ["figure.html"]  # no temporary file left behind


def test_bad_arguments(fig, tmp_path):
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf, \.html"):
        save_figure(fig, tmp_path / "figure.jpg")
    with pytest.raises(FileNotFoundError, match="folder"):
        save_figure(fig, tmp_path / "missing" / "figure.html")
    with pytest.raises(TypeError, match="fig"):
        save_figure({"data": []}, tmp_path / "figure.html")
    with pytest.raises(ValueError, match="width"):
        save_figure(fig, tmp_path / "figure.html", width=0)
    with pytest.raises(ValueError, match="scale"):
        save_figure(fig, tmp_path / "figure.png", scale=-1)
    assert _only(tmp_path) == []


def test_missing_chromium_names_the_install_command(fig, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "find_browser", lambda: None)
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        save_figure(fig, tmp_path / "figure.png")
    assert _only(tmp_path) == []


def test_png_has_the_requested_size(fig, tmp_path):
    _require_chromium()
    out = save_figure(fig, tmp_path / "figure.PNG", width=320, height=200, scale=1)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (320, 200)
    assert _only(tmp_path) == ["figure.PNG"]


def test_svg(fig, tmp_path):
    _require_chromium()
    text = save_figure(fig, tmp_path / "figure.svg", width=300, height=200).read_text()
    assert "<svg" in text and 'width="300"' in text


def test_pdf(fig, tmp_path):
    _require_chromium()
    data = save_figure(fig, tmp_path / "figure.pdf").read_bytes()
    assert data.startswith(b"%PDF") and b"%%EOF" in data[-64:]
