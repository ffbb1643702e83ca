"""The ``spikelab`` command. Subcommands are registered in :data:`COMMANDS`; each adds its own parser."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from spikelab.cli_nir import add_export_nir
from spikelab.cli_reproduce import add_reproduce
from spikelab.cli_train import add_eval, add_train
from spikelab.serve import add_serve_commands


def _cmd_version(args: argparse.Namespace) -> int:
    import platform

    import torch

    import spikelab

    print(f"spikelab {spikelab.__version__} (torch {torch.__version__}, python {platform.python_version()})")
    return 0


def _add_version(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version", help="print the spikelab, torch and python versions")
    p.set_defaults(func=_cmd_version)


# each entry adds one subcommand to the parser; later features append theirs
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_version, add_train, add_eval, add_reproduce, add_serve_commands,
]
COMMANDS.append(add_export_nir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikelab",
        description="spikelab: an interactive teaching lab for training spiking neural networks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
