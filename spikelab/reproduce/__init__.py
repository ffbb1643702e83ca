"""Reproductions of the seed papers' claims (``docs/RESULTS.md``): one module per claim, each a plain function.

A reproduction is registered as a :class:`Reproduction`; ``run(name, size=...)`` calls it and returns a
:class:`~spikelab.reproduce.table.Table` of our numbers (mean and spread over seeds) beside the paper's. It writes
its training runs under ``OUT/NAME/runs/`` (open them in the run comparison: ``spikelab dashboard runs`` with
``--runs OUT/NAME/runs``) and the table as ``OUT/NAME/table.json`` and ``table.md``.

Sizes: ``"smoke"`` (seconds, a tiny budget: checks that the reproduction runs end to end; the test suite uses it)
and ``"full"`` (the size whose numbers ``docs/RESULTS.md`` reports, each under about 30 minutes on a 2-core CPU).
A reproduction may also offer ``"lab"`` (a few minutes on a laptop: one seed, a smaller network and subset), the
size a lab re-runs before comparing with ``docs/RESULTS.md`` (:func:`reported` reads that file's table);
``Reproduction.sizes`` lists what each one offers.

``spikelab reproduce`` lists the reproductions; ``spikelab reproduce NAME [--size smoke]`` runs one. The labs call
the same functions at a size that fits a lab. Reproductions sit on top of the package: nothing below imports them.
"""
from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikelab._checks import check_choice
from spikelab.reproduce.reported import reported
from spikelab.reproduce.table import Table, machine_info, mean_spread

__all__ = ["Reproduction", "Table", "SIZES", "register", "names", "get", "run", "machine_info", "mean_spread",
           "reported"]

SIZES = ("smoke", "lab", "full")

#: modules that register reproductions when imported (each calls :func:`register` at import time)
MODULES: list[str] = [
    "spikelab.reproduce.tet_vs_sdt",
    "spikelab.reproduce.tit_cost",
    "spikelab.reproduce.pipe_s",
    "spikelab.reproduce.pipe_d",
    "spikelab.reproduce.gradient_depth",
    "spikelab.reproduce.aap",
    "spikelab.reproduce.flatness",
]


@dataclass(frozen=True)
class Reproduction:
    """One paper claim and the function that reproduces it.

    ``fn(size=..., out=Path, seeds=int | None, progress=bool) -> Table``: ``size`` is one of :data:`SIZES`;
    ``out`` is the folder to write runs into (it exists); ``seeds=None`` takes the size's default number of seeds.
    ``sizes``: the sizes it offers (every reproduction offers ``"smoke"`` and ``"full"``; ``"lab"`` is optional).
    """

    name: str  # e.g. "tet-vs-sdt"
    title: str  # one line: what is reproduced
    paper: str  # the paper, e.g. "Deng et al., ICLR 2022"
    spec: str  # where SPEC states the method and numbers, e.g. "SPEC section 3"
    fn: Callable[..., Table]
    sizes: tuple[str, ...] = ("smoke", "full")

    def __post_init__(self) -> None:
        if isinstance(self.sizes, str) or not {"smoke", "full"} <= set(self.sizes) <= set(SIZES):
            raise ValueError(f"sizes must hold 'smoke' and 'full', and only sizes of {SIZES}, got {self.sizes!r}")


_REGISTRY: dict[str, Reproduction] = {}


def register(reproduction: Reproduction) -> Reproduction:
    """Add ``reproduction`` to the registry (a name may be registered once)."""
    if not isinstance(reproduction, Reproduction):
        raise TypeError(f"reproduction must be a Reproduction, got {type(reproduction).__name__}")
    if reproduction.name in _REGISTRY and _REGISTRY[reproduction.name] is not reproduction:
        raise ValueError(f"a reproduction named {reproduction.name!r} is already registered")
    _REGISTRY[reproduction.name] = reproduction
    return reproduction


def _load_all() -> None:
    for module in MODULES:
        importlib.import_module(module)


def names() -> list[str]:
    """The registered reproductions, in registration order."""
    _load_all()
    return list(_REGISTRY)


def get(name: str) -> Reproduction:
    """The reproduction called ``name``; ``ValueError`` lists the valid names."""
    check_choice(name, "name", names())
    return _REGISTRY[name]


def run(
    name: str, *, size: str = "full", out: str | Path = "runs/reproduce", seeds: int | None = None,
    progress: bool = True,
) -> Table:
    """Run reproduction ``name`` at ``size`` into ``OUT/NAME/`` and return its table (also saved there).

    The table's ``meta`` records the machine (:func:`machine_info`), the size, the seeds and the wall time.
    """
    rep = get(name)
    check_choice(size, "size", SIZES)
    if size not in rep.sizes:
        raise ValueError(f"size must be one of {list(rep.sizes)} for reproduction {name!r}, got {size!r}")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"seeds must be an int >= 1 or None, got {seeds!r}")
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    table = rep.fn(size=size, out=folder, seeds=seeds, progress=progress)
    if not isinstance(table, Table):
        raise TypeError(f"reproduction {name!r} returned {type(table).__name__}, not a Table")
    meta: dict[str, Any] = dict(reproduction=name, paper=rep.paper, spec=rep.spec, size=size,
                                wall_time_s=round(time.perf_counter() - t0, 1), machine=machine_info())
    table.meta = {**meta, **table.meta}
    table.save(folder)
    return table
