"""``spikelab export-nir RUN OUT.nir``: export a trained run's network to a NIR file (see docs/NIR.md)."""
from __future__ import annotations

import argparse

from spikelab.cli_train import _guarded, _one_line_errors


def add_export_nir(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelab export-nir``."""
    p = sub.add_parser(
        "export-nir", help="export a trained run's network to a NIR file (for snnTorch, Norse, Sinabs, Lava, chips)",
        description="Export the network of a run folder (or its checkpoint.pt) to OUT, a NIR file (HDF5, written "
                    "atomically): conv, linear, pooling, flatten, IF/LIF/PLIF neurons and the readout, with batch "
                    "norm folded in (eval mode). The time step and the discretisation of the neurons' time "
                    "constants are recorded in the file. Layers NIR cannot express are refused by name; see "
                    "docs/NIR.md.",
    )
    p.add_argument("run", metavar="RUN", help="a run folder written by 'spikelab train', or its checkpoint.pt")
    p.add_argument("out", metavar="OUT.nir", help="the NIR file to write")
    p.add_argument("--dt", type=float, default=None, metavar="DT",
                   help="time step in the unit of NIR's tau (default: 1e-4, the step snnTorch's importer assumes)")
    p.add_argument("--discretisation", choices=("euler", "exact"), default="euler",
                   help="tau = dt/(1 - decay) (euler, as the peers) or tau = -dt/ln(decay) (exact); default euler")
    p.add_argument("--force-hard-reset", action="store_true",
                   help="export soft- or no-reset neurons with NIR's hard reset (changes the dynamics; warns)")
    _one_line_errors(p)
    p.set_defaults(func=_guarded(_export_nir))


def _export_nir(args: argparse.Namespace) -> int:
    import nir

    from spikelab.nir import export_run

    graph = export_run(args.run, args.out, dt=args.dt, discretisation=args.discretisation,
                       force_hard_reset=args.force_hard_reset)
    spiking = sum(isinstance(n, (nir.LIF, nir.IF)) for n in graph.nodes.values())
    print(f"wrote {args.out}: {len(graph.nodes)} NIR nodes ({spiking} spiking layers), "
          f"dt={graph.metadata['dt']:g}, {graph.metadata['discretisation']} discretisation")
    return 0
