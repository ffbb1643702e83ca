"""The TET options of ``spikelab train`` (``--tet-preset``, ``--tit``) and ``spikelab eval --T`` (SPEC section 3).

Kept apart from :mod:`spikelab.cli_train` so that the parser there gains only a compact block.
"""
from __future__ import annotations

import argparse
from typing import Any

from spikelab.losses import TET_PRESETS


class CommandError(ValueError):
    """A bad command line (printed as one line by ``cli_train``'s guard, which re-raises it as its own)."""


def add_train_options(p: argparse.ArgumentParser) -> None:
    """``--tet-preset NAME`` and ``--tit T:EPOCHS`` for ``spikelab train``."""
    g = p.add_argument_group("TET and time inheritance training (SPEC section 3)")
    presets = ", ".join(f"{k} (lam {v:g})" for k, v in TET_PRESETS.items())
    g.add_argument("--tet-preset", default=None, choices=tuple(TET_PRESETS), metavar="NAME",
                   help=f"the TET paper's settings: --loss tet with its lam and phi = the model's v_th; {presets}")
    g.add_argument("--tit", default=None, metavar="T:EPOCHS[,T:EPOCHS...]",
                   help="time inheritance training: first train EPOCHS epochs at each small T given here, in "
                        "order, then --epochs epochs at -T, one run from the same weights (each phase a fresh "
                        "optimiser and schedule; e.g. --tit 2:300 -T 6 --epochs 50). Static data only")


def add_eval_options(p: argparse.ArgumentParser) -> None:
    """``--T LIST`` for ``spikelab eval``."""
    p.add_argument("--T", dest="eval_T", default=None, metavar="T1,T2,...",
                   help="instead of the full report, a table of accuracy against the number of time steps, each "
                        "static input encoded over every T given (e.g. --T 1,2,4,8)")


def parse_int_list(text: str, option: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]`` (each >= 1), or a one-line error naming ``option``."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise CommandError(f"{option} must be a comma-separated list of integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise CommandError(f"{option} values must be >= 1, got {text!r}")
    return values


def parse_tit(text: str) -> list[tuple[int, int]]:
    """``"2:300"`` or ``"1:100,2:200"`` -> ``[(T, epochs), ...]``; a one-line error otherwise."""
    phases = []
    for part in text.split(","):
        bits = part.split(":")
        try:
            if len(bits) != 2:
                raise ValueError
            T, epochs = int(bits[0]), int(bits[1])
        except ValueError:
            raise CommandError(f"--tit must be T:EPOCHS pairs separated by commas (e.g. 2:300), got {text!r}") \
                from None
        if T < 1 or epochs < 1:
            raise CommandError(f"--tit needs T >= 1 and EPOCHS >= 1, got {part!r}")
        phases.append((T, epochs))
    return phases


def check_train_options(args: argparse.Namespace) -> list[tuple[int, int]] | None:
    """Before the recipe is read: ``--tet-preset`` sets ``--loss tet`` and its ``--lam`` (``phi`` follows the
    model's threshold once it is built: :func:`with_preset_phi`), refusing ``--loss``/``--lam``/``--phi`` given
    too (they default to None on the parser); ``--tit`` is parsed, and refused with ``--resume``. Returns the
    small-T phases of ``--tit`` (or None)."""
    if args.tet_preset is not None:
        clash = [opt for opt, v in (("--lam", args.lam), ("--phi", args.phi)) if v is not None]
        if args.loss not in (None, "tet"):
            clash.insert(0, f"--loss {args.loss}")
        if clash:
            raise CommandError(f"--tet-preset {args.tet_preset} sets the loss, lam and phi; drop {', '.join(clash)}")
        args.loss, args.lam = "tet", TET_PRESETS[args.tet_preset]
    if args.tit is not None and args.resume is not None:
        raise CommandError("--tit starts a new run in phases; a run trained in phases cannot be resumed (each phase "
                           "starts a fresh optimiser, which its checkpoint does not hold)")
    if args.resume is not None:
        _refuse_phased_resume(args.resume)
    return None if args.tit is None else parse_tit(args.tit)


def _refuse_phased_resume(resume: str) -> None:
    """A run trained in phases records ``phases`` in its ``config.json``: refuse to resume it, before any work."""
    import json
    from pathlib import Path

    path = Path(resume)
    config = (path if path.is_dir() else path.parent) / "config.json"
    try:
        phased = "phases" in json.loads(config.read_text())
    except (OSError, ValueError):
        return  # no readable config.json: the resume itself reports what is wrong
    if phased:
        raise CommandError(f"{resume} was trained in phases (--tit) and cannot be resumed: its checkpoint holds "
                           "the weights but no optimiser state (each phase starts a fresh one)")


def with_preset_phi(args: argparse.Namespace, config: Any, model: Any, info: Any) -> Any:
    """The TrainConfig with ``phi = model.v_th`` under ``--tet-preset`` (SPEC section 3: phi = v_th); ``--tit`` on
    event data is refused (event frames bring their own T)."""
    import dataclasses

    if args.tit is not None and info.is_event:
        raise CommandError(f"--tit trains at several T by encoding static images over each, but {info.name} holds "
                           "event frames, whose number of steps is fixed when they are binned: use static data")
    if args.tet_preset is None:
        return config
    return dataclasses.replace(config, phi=float(getattr(model, "v_th", 1.0)))


def print_accuracy_vs_T(rows: list[dict[str, Any]], header: str) -> None:
    """The table of :func:`spikelab.training.evaluate_at_T` rows."""
    print(header)
    print(f"  {'T':>4} {'accuracy':>10} {'loss':>10} {'firing rate':>12}")
    for r in rows:
        rate = f"{r['firing_rate']:.4f}" if r["firing_rate"] is not None else "-"
        print(f"  {r['T']:>4} {100 * r['acc']:>9.2f}% {r['loss']:>10.4f} {rate:>12}")
