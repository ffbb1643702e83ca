"""What ``spikelab train`` trains, from its command line: the run settings and the TrainConfig (the defaults of
:data:`spikelab.recipe.DEFAULTS` for what is not typed), or, with ``--resume``, the run's own recipe, refusing the
options that contradict it; and the run folder it claims (a new one) or locks (the resumed one)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spikelab.recipe import CHOSEN_KEYS, DEFAULTS, LEGACY, is_dual_stream

TRAIN_KEYS = ("epochs", "lr", "optimizer", "weight_decay", "schedule", "step_size", "gamma", "loss", "lam", "phi",
              "grad_clip", "seed")  # TrainConfig fields set from the command line
EXECUTION_KEYS = ("device", "amp", "compile")  # where and how fast, not what: free to change on resume
OUT_DEFAULT = "runs"
#: command-line options of the neuron -> fields of the recipe's ``neuron`` (:func:`spikelab.recipe.neuron_for`)
NEURON_FLAGS = {"neuron_decay": "decay", "v_th": "v_th", "reset": "reset", "surrogate": "surrogate",
                "surrogate_width": "width"}


class CommandError(Exception):
    """A bad command line detected after parsing; printed as one line."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` as one line. An error raised in a DataLoader worker arrives wrapped ("Caught X in
    DataLoader worker process 0. Original Traceback ..."): its last line is the original message."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    lines = text.splitlines()
    if lines[0].startswith("Caught ") and "worker" in lines[0]:
        return lines[-1].split(": ", 1)[-1]
    return lines[0]


def _names() -> tuple[list[str], list[str]]:
    from spikelab import data, models

    return models.names(), data.names()


def _check_args(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    model_names, data_names = _names()
    if cfg["model"] not in model_names:
        raise CommandError(f"--model must be one of {', '.join(model_names)}; got {cfg['model']!r}")
    if cfg["dataset"] not in data_names and not Path(cfg["dataset"]).exists():
        raise CommandError(f"--dataset must be one of {', '.join(data_names)} or an existing folder; "
                           f"got {cfg['dataset']!r}")
    for opt in ("T", "batch_size"):
        if cfg[opt] < 1:
            raise CommandError(f"--{opt.replace('_', '-')} must be >= 1, got {cfg[opt]}")
    if args.epochs is not None and args.epochs < 1:
        raise CommandError(f"--epochs must be >= 1, got {args.epochs}")
    if cfg["limit"] is not None and cfg["limit"] < 1:
        raise CommandError(f"--limit must be >= 1, got {cfg['limit']}")
    size = cfg["size"]
    if size is not None and (len(size) not in (1, 2) or min(size) < 1):
        raise CommandError(f"--size must be one or two positive numbers (PX, or H W), got {size}")
    if args.num_workers < 0:
        raise CommandError(f"--num-workers must be >= 0, got {args.num_workers}")
    if cfg["pathway"] is not None and not is_dual_stream(cfg["model"]):
        raise CommandError(f"--no-pathway applies to the dsnn-* models only, not {cfg['model']!r}")


def _flag(key: str) -> str:
    return "-T" if key == "T" else "--no-pathway" if key == "pathway" else f"--{key.replace('_', '-')}"


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe options typed on the command line (paths resolved, ``--size PX`` as ``[PX, PX]``)."""
    from spikelab.recipe import resolve_dataset

    given = {k: getattr(args, k) for k in (*CHOSEN_KEYS, *TRAIN_KEYS) if getattr(args, k, None) is not None}
    if "size" in given and len(given["size"]) == 1:
        given["size"] = given["size"] * 2
    if "dataset" in given or "data_root" in given:
        dataset, root = resolve_dataset(given.get("dataset", DEFAULTS["dataset"]), given.get("data_root"))
        given.update({"dataset": dataset} if "dataset" in given else {}, **({"data_root": root} if root else {}))
    return given


def _neuron_given(args: argparse.Namespace) -> dict[str, Any]:
    """The neuron fields typed on the command line (``--v-th 1.5`` -> ``{"v_th": 1.5}``)."""
    return {field: getattr(args, flag) for flag, field in NEURON_FLAGS.items() if getattr(args, flag, None) is not None}


def _neuron(model: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The recipe of ``model``'s default neuron with the typed ``changes`` (:func:`spikelab.recipe.neuron_for`)."""
    from spikelab.recipe import neuron_for, neuron_to_recipe

    try:
        return neuron_to_recipe(neuron_for(model, **changes))
    except (TypeError, ValueError) as err:
        raise CommandError(f"neuron options: {err}") from None


def _neuron_fields(recipe: dict[str, Any]) -> dict[str, Any]:
    """A neuron recipe in the command line's terms (the surrogate by name, its width as ``width``)."""
    sg = recipe["surrogate"]
    return {**recipe, "surrogate": sg["name"], "width": next(v for k, v in sg.items() if k != "name")}


def _saved_recipe(resume: str) -> tuple[Path, dict[str, Any], dict[str, Any], int]:
    """``(run folder, run settings, TrainConfig fields, epochs done)`` of the run ``--resume`` names: from its
    checkpoint, or from ``config.json`` for a run killed before its first epoch."""
    from spikelab import training
    from spikelab.training import TrainConfig

    path = Path(resume)
    run_dir = path if path.is_dir() else path.parent
    ckpt_path = path if path.is_file() else path / training.CHECKPOINT_FILE
    if ckpt_path.is_file():
        ckpt = training.load_checkpoint(ckpt_path)
        run, train, done = ckpt.get("run_config"), ckpt.get("train_config"), int(ckpt.get("epoch", 0))
    elif (run_dir / training.CONFIG_FILE).is_file() and path.is_dir():
        run = json.loads((run_dir / training.CONFIG_FILE).read_text())
        train = {f: run[f] for f in TrainConfig().to_dict() if f in run}
        done = 0
    elif path.exists():
        raise CommandError(f"{resume}: not a run folder (no {training.CHECKPOINT_FILE} or {training.CONFIG_FILE})")
    else:
        raise FileNotFoundError(f"checkpoint not found: {str(ckpt_path)!r}")
    missing = [k for k in CHOSEN_KEYS if k not in LEGACY and (not isinstance(run, dict) or k not in run)]
    if missing or not isinstance(train, dict):
        raise CommandError(f"{resume}: the checkpoint lacks the run settings {missing or ['train_config']} "
                           "(was it written by 'spikelab train' or a training panel?)")
    return run_dir, {**LEGACY, **run}, train, done


def recipe_from_args(args: argparse.Namespace):
    """``(run settings, TrainConfig, resumed run folder or None, epochs done)`` from the command line, or from the
    run itself with ``--resume`` (refusing options that contradict it)."""
    from spikelab.training import TrainConfig, planned_epochs

    given = _given(args)
    neuron = _neuron_given(args)
    execution = {k: getattr(args, k) for k in EXECUTION_KEYS if getattr(args, k) is not None}
    if args.resume is None:
        cfg = {k: given.get(k, DEFAULTS.get(k)) for k in CHOSEN_KEYS}
        cfg["augment"] = bool(cfg["augment"])
        if cfg["model"] in _names()[0]:  # else _check_args names the model
            cfg["neuron"] = _neuron(cfg["model"], neuron)
        if is_dual_stream(cfg["model"]):
            cfg["pathway"] = cfg["pathway"] is not False  # dual-stream training unless --no-pathway
        train = {k: given[k] if k in given else DEFAULTS[k] for k in TRAIN_KEYS if k in given or k in DEFAULTS}
        _check_args(cfg, args)
        return cfg, TrainConfig(**train, **execution), None, 0
    if args.name is not None or args.out is not None:
        raise CommandError("--resume continues the run in its own folder: --name and --out do not apply")
    run_dir, saved, saved_train, done = _saved_recipe(args.resume)
    have = {**saved, **saved_train}
    clash = [f"{_flag(k)} {v!r} (the run has {have.get(k)!r})" for k, v in given.items()
             if k != "epochs" and v != have.get(k)]
    if neuron:
        run_neuron = _neuron_fields(saved["neuron"] or _neuron(saved["model"], {}))  # None: the model's default
        flags = {field: flag for flag, field in NEURON_FLAGS.items()}
        clash += [f"{_flag(flags[k])} {v!r} (the run has {run_neuron[k]!r})" for k, v in neuron.items()
                  if v != run_neuron[k]]
    if clash:
        raise CommandError(f"--resume continues {run_dir} with its own recipe; these options contradict it: "
                           f"{', '.join(clash)}. Drop them, or start a new run with another --name")
    cfg = {k: saved[k] for k in CHOSEN_KEYS}
    if "preset" in saved:  # a training panel's network broken on purpose stays broken
        cfg["preset"] = saved["preset"]
    train = dict(saved_train, **execution)
    if args.epochs is not None:
        if args.epochs < done:
            raise CommandError(f"--epochs {args.epochs}: the run has already trained {done} epochs")
        train["epochs"] = args.epochs
    elif done > 0 or "extensions" in saved:
        train["epochs"] = planned_epochs(saved) or train["epochs"]
    _check_args(cfg, args)
    return cfg, TrainConfig.from_dict(train), run_dir, done


def claim(args: argparse.Namespace, cfg: dict[str, Any], run_dir: Path | None, lead: bool, size: int):
    """The held lock of the run folder on rank 0 (a new folder, or the resumed run's); every rank learns its path,
    or the error, so that none waits for a rank that gave up."""
    import torch.distributed as dist

    from spikelab import recipe, training

    lock, outcome = None, None
    if lead:
        try:
            if run_dir is not None:
                lock = training.lock_run(run_dir)
                training.clean_stale(run_dir.parent)
            else:
                out = args.out if args.out is not None else OUT_DEFAULT
                lock = training.claim_run(out, args.name, base=None if args.name else
                                          recipe.run_name(cfg["model"], cfg["dataset"]))
            outcome = str(lock.path)
        except (OSError, ValueError) as err:
            outcome = err
    if size > 1:
        box = [outcome if isinstance(outcome, str) else f"error: {one_line(outcome) if outcome else ''}"]
        dist.broadcast_object_list(box, src=0)
        if not lead:
            if box[0].startswith("error: "):
                raise CommandError(box[0][7:])
            return None, Path(box[0])
    if isinstance(outcome, BaseException):
        raise outcome
    return lock, lock.path
