"""NIR files: written atomically, read with one clear error for anything that is not a NIR file."""
from __future__ import annotations

import io
import os
from pathlib import Path

import h5py
import nir

from spikelab.training.runs import atomic_write


def write_graph(path: str | os.PathLike, graph: nir.NIRGraph) -> None:
    """Write ``graph`` to ``path`` as NIR's HDF5 file, atomically (a temporary file, then a rename)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path or None, got {type(path).__name__}")
    buffer = io.BytesIO()  # h5py needs a readable file; the atomic writer gives a write-only one
    nir.write(buffer, graph)
    atomic_write(Path(path), lambda f: f.write(buffer.getvalue()), mode="wb")


def _node_types(group: h5py.Group, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for name, node in group.get("nodes", {}).items():
        kind = node["type"][()] if "type" in node else b"?"
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        out.append((prefix + name, kind))
        if kind == "NIRGraph":
            out += _node_types(node, f"{prefix}{name}.")
    return out


def read_graph(source: str | os.PathLike | nir.NIRGraph) -> nir.NIRGraph:
    """``source`` itself if it is a ``nir.NIRGraph``, else the graph in the NIR file at that path.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not NIR (not HDF5, no
    NIR version or node, a node type this ``nir`` version does not know, or parameters it cannot read).
    """
    if isinstance(source, nir.NIRGraph):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a NIR file path or a nir.NIRGraph, got {type(source).__name__}")
    p = Path(source)
    if not p.is_file():
        raise FileNotFoundError(f"NIR file not found: {str(p)!r}")
    if not h5py.is_hdf5(p):
        raise ValueError(f"{str(p)!r} is not a NIR file (NIR files are HDF5, this one is not)")
    with h5py.File(p, "r") as f:
        if "node" not in f or "version" not in f:
            raise ValueError(f"{str(p)!r} is an HDF5 file but not a NIR file (it has no NIR 'version' and 'node')")
        known = set(nir.ir.__all__)
        for name, kind in _node_types(f["node"]):
            if kind not in known:
                raise ValueError(f"{str(p)!r}: NIR node {name!r} has type {kind!r}, which nir {nir.__version__} "
                                 "does not know (written by a newer NIR?)")
    try:
        graph = nir.read(p)
    except Exception as err:
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        raise ValueError(f"{str(p)!r} is not a readable NIR file ({reason})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"{str(p)!r} holds a single {type(graph).__name__} node, not a NIR graph")
    return graph
