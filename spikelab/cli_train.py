"""``spikelab train`` and ``spikelab eval``: train a model on a dataset into a run folder; evaluate a checkpoint.

Both run data-parallel under ``torchrun --nproc_per_node=N -m spikelab train ...`` (only rank 0 prints and
writes). Bad arguments end with one ``spikelab <command>: error: ...`` line and exit status 2; a run that diverges
(non-finite or exploding loss) with one line and status 1. How run folders are named, locked and resumed is in
:mod:`spikelab.training.folders` and :mod:`spikelab.training.resume`; the recipe keys in :mod:`spikelab.recipe`.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from spikelab import cli_tet
from spikelab.cli_recipe import OUT_DEFAULT, CommandError, claim, one_line, recipe_from_args
from spikelab.recipe import DEFAULTS


def _one_line_errors(p: argparse.ArgumentParser) -> None:
    """Make ``p`` report a parse error as one line (the long usage text is one ``--help`` away)."""
    def error(message: str) -> None:
        p.exit(2, f"{p.prog}: error: {message} (see {p.prog} --help)\n")

    p.error = error  # type: ignore[method-assign]


def _names() -> tuple[list[str], list[str]]:
    from spikelab import data, models

    return models.names(), data.names()


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", metavar="DIR", default=None,
                   help="folder holding the dataset files, for datasets that need one (default: none)")
    p.add_argument("--limit", type=int, metavar="N", default=None,
                   help="use at most N samples of each split, for quick smoke runs (default: all)")
    p.add_argument("--device", default=None, metavar="DEV",
                   help="'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N' (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_train(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelab train``. Recipe options default to None ("not given"), so that a resume can tell the
    options typed from the defaults; the defaults are :data:`spikelab.recipe.DEFAULTS` and ``TrainConfig()``."""
    from spikelab.training import OPTIMIZERS, SCHEDULES, TrainConfig

    model_names, data_names = _names()
    d, tc = DEFAULTS, TrainConfig()
    p = sub.add_parser(
        "train", help="train a spiking network and write a run folder",
        description="Train a spiking network on a dataset. Writes config.json, history.jsonl (per epoch), "
                    "metrics.json and checkpoint.pt into OUT/NAME/. Run data-parallel with "
                    "'torchrun --nproc_per_node=N -m spikelab train ...' (--batch-size is then the global batch).",
    )
    p.add_argument("--model", metavar="NAME", help=f"the network: {', '.join(model_names)} (default: {d['model']})")
    p.add_argument("--dataset", metavar="NAME_OR_PATH",
                   help=f"a dataset name ({', '.join(data_names)}) or a folder path (default: {d['dataset']})")
    p.add_argument("--size", type=int, nargs="+", metavar="PX",
                   help="resize the images of an image folder to PX x PX, or to H x W with two numbers "
                        "(default: keep their size, which must then be the same for all)")
    p.add_argument("--augment", action="store_true", default=None,
                   help="random crops (and flips where they keep the label)")
    p.add_argument("-T", "--T", dest="T", type=int, metavar="STEPS", help=f"time steps per sample (default: {d['T']})")
    p.add_argument("--epochs", type=int, help=f"passes over the training data (default: {d['epochs']}); with "
                   "--resume, a new total (the schedule change is printed)")
    p.add_argument("--batch-size", type=int, metavar="B",
                   help=f"samples per optimiser step, over all processes (default: {d['batch_size']})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default: {d['lr']})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"optimiser (default: {d['optimizer']})")
    p.add_argument("--weight-decay", type=float, metavar="WD", help=f"weight decay (default: {tc.weight_decay})")
    p.add_argument("--schedule", choices=SCHEDULES,
                   help=f"learning-rate schedule, per step: cosine to 0 or x gamma every --step-size epochs "
                        f"(default: {d['schedule']})")
    p.add_argument("--step-size", type=int, metavar="EPOCHS",
                   help=f"epochs between decays of the step schedule (default: {tc.step_size})")
    p.add_argument("--gamma", type=float, help=f"step schedule factor (default: {tc.gamma})")
    p.add_argument("--loss", choices=("sdt", "tet"),
                   help=f"SDT: CE of the time-averaged output; TET: mean over steps of CE plus lam * MSE "
                        f"to phi (default: {d['loss']})")
    p.add_argument("--lam", type=float, help=f"TET regulariser weight (default: {tc.lam})")
    p.add_argument("--phi", type=float, help=f"TET regulariser target (default: {tc.phi})")
    p.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the gradient's L2 norm (default: no clipping)")
    p.add_argument("--seed", type=int, help=f"seed of weights, shuffling and augmentation (default: {d['seed']})")
    p.add_argument("--drop-last", action=argparse.BooleanOptionalAction, default=None,
                   help="drop the training split's last batch when it is partial, so every step averages a full "
                        f"batch; --no-drop-last keeps it (default: {'drop' if d['drop_last'] else 'keep'})")
    _add_neuron(p)
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision: float16 on CUDA, bfloat16 on CPU (default: on for CUDA, off for CPU)")
    p.add_argument("--compile", action="store_true", default=None, help="compile the model with torch.compile")
    p.add_argument("--num-workers", type=int, default=0, metavar="N", help="data loader processes (default: 0)")
    p.add_argument("--out", default=None, metavar="DIR", help=f"folder of run folders (default: {OUT_DEFAULT})")
    p.add_argument("--name", default=None, help="run folder name, a plain folder name (default: "
                   "MODEL-DATASET-DATE-TIME); a run that died before its first epoch restarts under its name")
    p.add_argument("--no-pathway", dest="pathway", action="store_false", default=None,
                   help="dsnn-* models: train the full-spike network alone, without the auxiliary accumulation "
                        "pathway (default: dual-stream training with it; SPEC section 5)")
    p.add_argument("--diagnose", action="store_true",
                   help="run the training doctor on a test batch before training and after every epoch, and print "
                        "what it finds (silent or saturated layers, a dead output, vanishing or exploding "
                        "gradients, NaN); the findings are also stored in history.jsonl")
    p.add_argument("--resume", default=None, metavar="RUN_OR_CHECKPOINT",
                   help="continue a run in its folder with its own recipe (model, data, T, batch size, seed, "
                        "schedule, ...); options that contradict it are refused, except --epochs (a new total) and "
                        "--device/--amp/--compile")
    cli_tet.add_train_options(p)
    _add_common(p)
    _one_line_errors(p)
    p.set_defaults(func=_guarded(_train))


def _add_neuron(p: argparse.ArgumentParser) -> None:
    """The neuron of the spiking layers (``spikelab.recipe.neuron_for``; default: the model's own)."""
    from spikelab import surrogate
    from spikelab.neurons import RESET_MODES

    g = p.add_argument_group("neuron", "the spiking layers' neuron (default: the model's own: LIF, decay 0.5, "
                                       "v_th 1, hard reset, atan alpha=2 for mlp and conv-small)")
    g.add_argument("--neuron-decay", type=float, metavar="D", help="membrane decay per step, in [0, 1]")
    g.add_argument("--v-th", type=float, metavar="V", help="firing threshold (> 0)")
    g.add_argument("--reset", choices=RESET_MODES, help="reset after a spike")
    g.add_argument("--surrogate", choices=surrogate.names(), help="surrogate gradient family")
    g.add_argument("--surrogate-width", type=float, metavar="W",
                   help="the surrogate's width parameter (atan/sigmoid alpha, fast_sigmoid slope, triangle gamma, "
                        "rectangle width; default: the family's own)")


def add_eval(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelab eval``."""
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint: accuracy, firing rates, operations and energy",
        description="Evaluate a trained checkpoint on its dataset's test split (or another dataset with the same "
                    "input shape): loss, accuracy, firing rate per layer, and synaptic operations and energy per "
                    "layer (45 nm: 0.9 pJ per AC, 4.6 pJ per MAC; SPEC section 5).",
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT", help="a run folder or its checkpoint.pt")
    p.add_argument("--dataset", default=None, metavar="NAME_OR_PATH",
                   help="dataset to evaluate on (default: the one the run was trained on)")
    p.add_argument("--split", default="test", choices=("test", "train"), help="which split (default: test)")
    p.add_argument("--batch-size", type=int, default=256, metavar="B", help="samples per batch (default: 256)")
    cli_tet.add_eval_options(p)
    p.add_argument("--pathway", action=argparse.BooleanOptionalAction, default=None,
                   help="dsnn-* models: evaluate the dual-stream network (--pathway) or the full-spike network "
                        "alone (--no-pathway); default: as it was trained")
    _add_common(p)
    _one_line_errors(p)
    p.set_defaults(func=_guarded(_eval))


def _guarded(fn):
    """Run a command; turn bad input into one error line (exit 2) and a diverged run into one line (exit 1).
    ``SPIKELAB_DEBUG=1`` shows the traceback."""
    def run(args: argparse.Namespace) -> int:
        from spikelab.training import DivergenceError, shutdown_distributed

        try:
            status = fn(args)
        except (CommandError, ValueError, TypeError, OSError, ImportError, DivergenceError) as err:
            shutdown_distributed(wait=False)
            if os.environ.get("SPIKELAB_DEBUG") == "1":
                raise
            print(f"spikelab {args.command}: error: {one_line(err)}", file=sys.stderr)
            return 1 if isinstance(err, DivergenceError) else 2
        except BaseException:
            shutdown_distributed(wait=False)
            raise
        shutdown_distributed()
        return status
    return run


class _Printer:
    """Prints one line per epoch (the command line may print; ``fit`` never does)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def __call__(self, event: str, r: dict[str, Any]) -> None:
        if event != "epoch_end":
            return
        test = (f"  test loss {r['test_loss']:.4f} acc {100 * r['test_acc']:5.1f} %"
                if r.get("test_acc") is not None else "")
        phase = f"  [{r['phase']}]" if "phase" in r else ""
        print(f"epoch {r['epoch']:>3}/{self.epochs}  train loss {r['train_loss']:.4f} acc "
              f"{100 * r['train_acc']:5.1f} %{test}  lr {r['lr']:.2e}  {r['time_s']:6.1f} s{phase}", flush=True)


class _StopOnSigint:
    """While active, the first Ctrl-C sets ``stop`` (training ends after the current batch, cleanly); a second one
    interrupts at once. The previous handler is restored on exit."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop, self.previous = stop, None

    def _handler(self, signum, frame):  # noqa: ARG002
        if self.stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr, flush=True)
        self.stop.set()

    def __enter__(self) -> "_StopOnSigint":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _note(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    print(f"spikelab train: note: {message}", file=sys.stderr, flush=True)


def _train(args: argparse.Namespace) -> int:
    import contextlib

    import torch

    from spikelab import engine, recipe, training

    if args.name is not None:
        training.check_run_name(args.name)
    engine.tune_allocator()  # this process is ours: keep freed tensors' memory for the next step
    tit = cli_tet.check_train_options(args)  # --tet-preset fills --loss/--lam; --tit's phases
    cfg, config, run_dir, done = recipe_from_args(args)
    rank, size = training.init_distributed(config.device)
    lead = rank == 0
    lock, run_dir = claim(args, cfg, run_dir, lead, size)
    with lock if lock is not None else contextlib.nullcontext():
        if lead and lock.restarted:
            print(f"run {run_dir.name} ended before its first epoch: starting it again", file=sys.stderr)
        train_loader, test_loader, info = recipe.make_data(cfg, batch_size=cfg["batch_size"], seed=config.seed,
                                                           num_workers=args.num_workers)
        cfg = recipe.with_data(cfg, info, world_size=size)
        torch.manual_seed(config.seed)
        model = recipe.build_model(cfg)
        config = cli_tet.with_preset_phi(args, config, model, info)
        stop = threading.Event()
        if lead:
            n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            device = training.select_device(config.device)
            verb = f"resuming {run_dir} after epoch {done}: " if args.resume else ""
            print(f"{verb}training {cfg['model']} ({n_params:,} parameters) on {info.name} "
                  f"({len(train_loader.dataset)} train / {len(test_loader.dataset)} test, {info.num_classes} "
                  f"classes), T={cfg['T']}, {config.loss.upper()} loss"
                  + ((", dual-stream training (accumulation pathway on)" if cfg["pathway"]
                      else ", full-spike network without the pathway") if cfg.get("pathway") is not None else "")
                  + f", {config.optimizer} lr {config.lr:g} "
                  f"{config.schedule}, batch {cfg['batch_size']}, {device}, neuron "
                  f"{recipe.describe_neuron(cfg.get('neuron'), cfg['model'])}"
                  + (f" x {size} processes" if size > 1 else "") + f" -> {run_dir}", flush=True)
        source = Path(args.resume) if args.resume else None  # a run folder, or a checkpoint file in it
        resume = source if source is not None and source.is_file() else \
            run_dir if source is not None and (run_dir / training.CHECKPOINT_FILE).is_file() else None
        callbacks: list[Any] = [_Printer(config.epochs + sum(e for _, e in tit or ()))]
        if args.diagnose:
            callbacks.insert(0, _doctor(model, test_loader, info.is_event, config))
        with _StopOnSigint(stop), warnings.catch_warnings():
            warnings.simplefilter("always", training.ResumeWarning)
            warnings.showwarning = _note
            data = (train_loader, test_loader, info)
            common = dict(stop_event=stop, run_dir=run_dir, run_config=cfg, progress=not args.no_progress and lead)
            if tit:  # time inheritance training: the small-T phases, then --epochs at -T
                history = training.fit_tit(
                    model, data, config, T=[t for t, _ in tit] + [cfg["T"]],
                    epochs=[e for _, e in tit] + [config.epochs], callbacks=callbacks, **common)
            else:
                history = training.fit(model, data, config, callbacks=callbacks, resume=resume, **common)
    if lead:
        m = training.final_metrics(history, history.stopped)
        acc = f"test accuracy {100 * m['test_acc']:.1f} % (best {100 * m['best_test_acc']:.1f} %)" \
            if m["test_acc"] is not None else "no finished epoch"
        state = "stopped" if history.stopped else "done"
        print(f"{state}: {acc}, {m['time_s']:.1f} s of training; run folder {run_dir}", flush=True)
        if args.diagnose:
            found = {(f["layer"], f["kind"]) for entry in callbacks[0].log for f in entry["findings"]}
            print(f"training doctor: {len(found)} different finding(s)" if found else
                  "training doctor: nothing found", flush=True)
    return 130 if history.stopped else 0


def _first_batch(loader, is_event: bool):
    """The first ``(x, y)`` of a loader, ``x`` in the model's layout (events ``[B, T, ...]`` -> ``[T, B, ...]``)."""
    x, y = next(iter(loader))
    return (x.transpose(0, 1).contiguous() if is_event else x), y


def _doctor(model, loader, is_event: bool, config):
    """The training doctor for ``spikelab train --diagnose``: prints each new finding as it appears."""
    from spikelab.analysis import DoctorCallback
    from spikelab.losses import get_loss

    def show(finding, epoch: int) -> None:
        when = "before training" if epoch == 0 else f"after epoch {epoch}"
        print(f"doctor, {when}: {finding}", flush=True)

    x, y = _first_batch(loader, is_event)
    return DoctorCallback(model, x, y, loss=get_loss(config.loss, lam=config.lam, phi=config.phi), warn=False,
                          on_finding=show)


def _eval(args: argparse.Namespace) -> int:
    from spikelab import recipe, training
    from spikelab.metrics import ops_totals

    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise CommandError(f"--limit must be >= 1, got {args.limit}")
    device = args.device or "auto"
    rank, _ = training.init_distributed(device)
    ckpt = training.load_checkpoint(args.checkpoint)
    cfg = dict(ckpt["run_config"]) if isinstance(ckpt.get("run_config"), dict) else {}
    missing = [k for k in ("dataset", *recipe.MODEL_KEYS) if k not in cfg]
    if missing:
        raise CommandError(f"{args.checkpoint}: the checkpoint lacks the run settings {missing} "
                           "(was it written by 'spikelab train' or a training panel?)")
    if args.pathway is not None:
        if not recipe.is_dual_stream(cfg["model"]):
            raise CommandError(f"--pathway/--no-pathway apply to the dsnn-* models only, not {cfg['model']!r}")
        cfg["pathway"] = args.pathway
    model = recipe.build_model(cfg, ckpt["model"], source=repr(args.checkpoint))
    cfg.setdefault("data_root", None)
    if args.dataset is not None:
        dataset, root = recipe.resolve_dataset(args.dataset, args.data_root)
        folder = dataset == "folder" or dataset not in _names()[1]  # --size resizes image folders only
        cfg.update(dataset=dataset, data_root=root, size=cfg.get("size") if folder else None)
    elif args.data_root is not None:
        cfg["data_root"] = recipe.resolve_dataset(cfg["dataset"], args.data_root)[1]
    train_loader, test_loader, info = recipe.make_data(cfg, batch_size=args.batch_size, seed=0, augment=False,
                                                       limit=args.limit)
    expected = tuple(cfg["input_shape"][1:] if cfg["is_event"] else cfg["input_shape"])
    got = tuple(info.input_shape[1:] if info.is_event else info.input_shape)
    if got != expected or info.is_event != cfg["is_event"]:
        raise CommandError(f"dataset {info.name!r} has samples of shape {tuple(info.input_shape)}, but the model was "
                           f"trained on {tuple(cfg['input_shape'])}")
    loader = test_loader if args.split == "test" else train_loader
    loss = cfg["loss"] if cfg.get("loss") in ("sdt", "tet") else "sdt"  # a custom loss is not stored: use SDT
    if args.eval_T is not None:
        Ts = cli_tet.parse_int_list(args.eval_T, "--T")
        rows = training.evaluate_at_T(model, loader, Ts, loss=loss, lam=cfg.get("lam", 0.05), phi=cfg.get("phi", 1.0),
                                      device=device, progress=not args.no_progress and rank == 0)
        if rank == 0:
            cli_tet.print_accuracy_vs_T(rows, f"{cfg['model']} on {info.name} ({args.split}, {rows[0]['n']} samples; "
                                              f"trained at T={cfg['T']}): accuracy against T")
        return 0
    res = training.evaluate(model, loader, loss=loss,
                            lam=cfg.get("lam", 0.05), phi=cfg.get("phi", 1.0), device=device, ops=True,
                            progress=not args.no_progress and rank == 0, sequence_input=info.is_event)
    if rank != 0:
        return 0
    mode = ((" (dual-stream network)" if cfg.get("pathway") is not False else " (full-spike network alone)")
            if recipe.is_dual_stream(cfg["model"]) else "")
    print(f"{cfg['model']}{mode} on {info.name} ({args.split}, {res['n']} samples, T={cfg['T']}): "
          f"accuracy {100 * res['acc']:.2f} %, loss {res['loss']:.4f}")
    print("firing rates (spikes per neuron per step):")
    for layer, r in res["firing_rates"].items():
        print(f"  {layer:<24} {r:.4f}")
    rows = res["ops"]
    print("synaptic operations and energy per sample (0.9 pJ per AC, 4.6 pJ per MAC):")
    print(f"  {'layer':<24} {'type':<7} {'input rate':>10} {'ACs':>12} {'MACs':>12} {'energy':>12}")
    for r in rows:
        rate = f"{r['input_rate']:.4f}" if r["input_rate"] is not None else "-"
        print(f"  {r['layer']:<24} {r['type']:<7} {rate:>10} {r['acs']:>12.4g} {r['macs']:>12.4g} "
              f"{_energy(r['energy_pj']):>12}")
    tot = ops_totals(rows)
    print(f"  {'total':<24} {'':<7} {'':>10} {tot['acs']:>12.4g} {tot['macs']:>12.4g} {_energy(tot['energy_pj']):>12}")
    _print_diagnosis(model, loader, info.is_event, loss, cfg)
    return 0


def _print_diagnosis(model, loader, is_event: bool, loss: str, cfg: dict[str, Any]) -> None:
    """The training doctor on the first batch of ``loader``, in eval mode, printed."""
    from spikelab.analysis import diagnose, format_findings
    from spikelab.losses import get_loss

    x, y = _first_batch(loader, is_event)
    device = next(model.parameters()).device
    model.eval()
    findings = diagnose(model, x.to(device), y.to(device),
                        loss=get_loss(loss, lam=cfg.get("lam", 0.05), phi=cfg.get("phi", 1.0)))
    print(f"training doctor (first batch of {len(y)}, eval mode): " + ("nothing found" if not findings else
          f"{len(findings)} finding(s)\n{format_findings(findings)}"))


def _energy(pj: float) -> str:
    for factor, unit in ((1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ")):
        if abs(pj) >= factor:
            return f"{pj / factor:.3g} {unit}"
    return f"{pj:.3g} pJ"
