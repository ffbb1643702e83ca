"""``spikelab reproduce``: list the paper reproductions, or run one and print its table (see docs/RESULTS.md)."""
from __future__ import annotations

import argparse
import sys

from spikelab.cli_train import _guarded, _one_line_errors


def add_reproduce(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelab reproduce``."""
    p = sub.add_parser(
        "reproduce", help="reproduce a seed paper's claim and print our numbers beside the paper's",
        description="Without NAME, list the reproductions. With NAME, run it: trains its runs into OUT/NAME/runs/, "
                    "prints a table of our numbers (mean and spread over seeds) beside the paper's and writes it to "
                    "OUT/NAME/table.json and table.md. --size smoke runs a tiny budget in seconds; the full size is "
                    "what docs/RESULTS.md reports.",
    )
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="the reproduction (omit to list them)")
    p.add_argument("--size", default="full", choices=("smoke", "lab", "full"),
                   help="budget (default: full; lab: a few minutes on a laptop, where the reproduction offers it)")
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="number of seeds (default: the size's own)")
    p.add_argument("--out", default="runs/reproduce", metavar="DIR",
                   help="folder for the runs and tables (default: runs/reproduce)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _one_line_errors(p)
    p.set_defaults(func=_guarded(_reproduce))


def _reproduce(args: argparse.Namespace) -> int:
    from spikelab import reproduce

    if args.name is None:
        print("reproductions (spikelab reproduce NAME [--size smoke]):")
        for name in reproduce.names():
            rep = reproduce.get(name)
            print(f"  {name:<22} {rep.title} ({rep.paper}; {rep.spec})")
        return 0
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    table = reproduce.run(args.name, size=args.size, out=args.out, seeds=args.seeds, progress=not args.no_progress)
    print(table)
    print(f"wall time {table.meta['wall_time_s']:.1f} s; table written to {args.out}/{args.name}/table.md",
          file=sys.stderr)
    return 0
