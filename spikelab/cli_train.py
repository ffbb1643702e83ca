"""``spikelab train`` and ``spikelab eval``: train a model on a dataset into a run folder; evaluate a checkpoint.

Both run data-parallel under ``torchrun --nproc_per_node=N -m spikelab train ...`` (only rank 0 prints and
writes). Bad arguments end with one ``spikelab <command>: error: ...`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

DEFAULTS = dict(model="conv-small", dataset="digits", T=4, epochs=15, batch_size=32, lr=1e-2, optimizer="adam",
                schedule="cosine", loss="sdt", seed=0)
INPUT_SIZE_MODELS = ("mlp", "conv-small", "vggsnn")  # models that take input_size=(H, W)
RESUME_KEEPS = ("model", "dataset", "data_root", "limit", "augment", "T", "batch_size")


class CommandError(Exception):
    """A bad command line detected after parsing; printed as one line."""


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
    p.add_argument("--device", default="auto", metavar="DEV",
                   help="'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N' (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_train(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelab train``."""
    from spikelab.training import OPTIMIZERS, SCHEDULES, TrainConfig

    model_names, data_names = _names()
    d, tc = DEFAULTS, TrainConfig()
    p = sub.add_parser(
        "train", help="train a spiking network and write a run folder",
        description="Train a spiking network on a dataset. Writes config.json, history.jsonl (per epoch), "
                    "metrics.json and checkpoint.pt into OUT/NAME/. Run data-parallel with "
                    "'torchrun --nproc_per_node=N -m spikelab train ...' (--batch-size is then the global batch).",
    )
    p.add_argument("--model", default=d["model"], metavar="NAME",
                   help=f"the network: {', '.join(model_names)} (default: {d['model']})")
    p.add_argument("--dataset", default=d["dataset"], metavar="NAME_OR_PATH",
                   help=f"a dataset name ({', '.join(data_names)}) or a folder path (default: {d['dataset']})")
    p.add_argument("--augment", action="store_true", help="random crops (and flips where they keep the label)")
    p.add_argument("-T", "--T", dest="T", type=int, default=d["T"], metavar="STEPS",
                   help=f"time steps per sample (default: {d['T']})")
    p.add_argument("--epochs", type=int, default=d["epochs"], help=f"passes over the training data "
                   f"(default: {d['epochs']}); with --resume, the total to reach")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], metavar="B",
                   help=f"samples per optimiser step, over all processes (default: {d['batch_size']})")
    p.add_argument("--lr", type=float, default=d["lr"], help=f"peak learning rate (default: {d['lr']})")
    p.add_argument("--optimizer", default=d["optimizer"], choices=OPTIMIZERS,
                   help=f"optimiser (default: {d['optimizer']})")
    p.add_argument("--weight-decay", type=float, default=tc.weight_decay, metavar="WD",
                   help=f"weight decay (default: {tc.weight_decay})")
    p.add_argument("--schedule", default=d["schedule"], choices=SCHEDULES,
                   help=f"learning-rate schedule, per step: cosine to 0 or x gamma every --step-size epochs "
                        f"(default: {d['schedule']})")
    p.add_argument("--step-size", type=int, default=tc.step_size, metavar="EPOCHS",
                   help=f"epochs between decays of the step schedule (default: {tc.step_size})")
    p.add_argument("--gamma", type=float, default=tc.gamma, help=f"step schedule factor (default: {tc.gamma})")
    p.add_argument("--loss", default=d["loss"], choices=("sdt", "tet"),
                   help=f"SDT: CE of the time-averaged output; TET: mean over steps of CE plus lam * MSE "
                        f"to phi (default: {d['loss']})")
    p.add_argument("--lam", type=float, default=tc.lam, help=f"TET regulariser weight (default: {tc.lam})")
    p.add_argument("--phi", type=float, default=tc.phi, help=f"TET regulariser target (default: {tc.phi})")
    p.add_argument("--grad-clip", type=float, default=None, metavar="NORM",
                   help="clip the gradient's L2 norm (default: no clipping)")
    p.add_argument("--seed", type=int, default=d["seed"], help=f"seed of weights, shuffling and augmentation "
                   f"(default: {d['seed']})")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (CUDA only; default: on for CUDA)")
    p.add_argument("--compile", action="store_true", help="compile the model with torch.compile")
    p.add_argument("--num-workers", type=int, default=0, metavar="N", help="data loader processes (default: 0)")
    p.add_argument("--out", default="runs", metavar="DIR", help="folder of run folders (default: runs)")
    p.add_argument("--name", default=None, help="run folder name (default: MODEL-DATASET-DATE-TIME)")
    p.add_argument("--diagnose", action="store_true",
                   help="run the training doctor on a test batch before training and after every epoch, and print "
                        "what it finds (silent or saturated layers, a dead output, vanishing or exploding "
                        "gradients, NaN); the findings are also stored in history.jsonl")
    p.add_argument("--resume", default=None, metavar="RUN_OR_CHECKPOINT",
                   help="continue a run from its checkpoint, in its folder, up to --epochs in total; model, data, "
                        "T and batch size come from the run, other options from this command line")
    _add_common(p)
    _one_line_errors(p)
    p.set_defaults(func=_guarded(_train))


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
    _add_common(p)
    _one_line_errors(p)
    p.set_defaults(func=_guarded(_eval))


def _guarded(fn):
    """Run a command; turn bad input into one error line (exit 2). ``SPIKELAB_DEBUG=1`` shows the traceback."""
    def run(args: argparse.Namespace) -> int:
        from spikelab.training import shutdown_distributed

        try:
            status = fn(args)
        except (CommandError, ValueError, TypeError, OSError) as err:  # OSError: unreadable / unwritable paths
            shutdown_distributed(wait=False)
            if os.environ.get("SPIKELAB_DEBUG") == "1":
                raise
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"spikelab {args.command}: error: {msg}", file=sys.stderr)
            return 2
        except BaseException:
            shutdown_distributed(wait=False)
            raise
        shutdown_distributed()
        return status
    return run


def _build_model(cfg: dict[str, Any]):
    from spikelab import models

    kwargs: dict[str, Any] = {}
    if cfg["model"] in INPUT_SIZE_MODELS:
        kwargs["input_size"] = tuple(cfg["input_shape"][-2:])
    in_channels = cfg["input_shape"][1] if cfg["is_event"] else cfg["input_shape"][0]
    model = models.build(cfg["model"], num_classes=cfg["num_classes"], in_channels=in_channels, T=cfg["T"], **kwargs)
    if cfg.get("preset") == "break it":  # a training panel's network broken on purpose (not in its weights)
        from spikelab.analysis import break_it

        break_it(model)
    return model


def _loaders(cfg: dict[str, Any], *, batch_size: int, seed: int, num_workers: int = 0):
    from spikelab import data

    return data.make_loaders(cfg["dataset"], batch_size=batch_size, root=cfg["data_root"], augment=cfg["augment"],
                             seed=seed, num_workers=num_workers, T=cfg["T"], limit=cfg["limit"])


def _check_args(args: argparse.Namespace) -> None:
    model_names, data_names = _names()
    if args.model not in model_names:
        raise CommandError(f"--model must be one of {', '.join(model_names)}; got {args.model!r}")
    if args.dataset not in data_names and not Path(args.dataset).exists():
        raise CommandError(f"--dataset must be one of {', '.join(data_names)} or an existing folder; "
                           f"got {args.dataset!r}")
    for opt in ("T", "epochs", "batch_size"):
        if getattr(args, opt) < 1:
            raise CommandError(f"--{opt.replace('_', '-')} must be >= 1, got {getattr(args, opt)}")
    if args.limit is not None and args.limit < 1:
        raise CommandError(f"--limit must be >= 1, got {args.limit}")
    if args.num_workers < 0:
        raise CommandError(f"--num-workers must be >= 0, got {args.num_workers}")


class _Printer:
    """Prints one line per epoch (the command line may print; ``fit`` never does)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def __call__(self, event: str, r: dict[str, Any]) -> None:
        if event != "epoch_end":
            return
        test = (f"  test loss {r['test_loss']:.4f} acc {100 * r['test_acc']:5.1f} %"
                if r.get("test_acc") is not None else "")
        print(f"epoch {r['epoch']:>3}/{self.epochs}  train loss {r['train_loss']:.4f} acc "
              f"{100 * r['train_acc']:5.1f} %{test}  lr {r['lr']:.2e}  {r['time_s']:6.1f} s", flush=True)


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


def _train(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from spikelab import training

    cfg: dict[str, Any] = dict(model=args.model, dataset=args.dataset, data_root=args.data_root, limit=args.limit,
                               augment=args.augment, T=args.T, batch_size=args.batch_size)
    run_dir: Path | None = None
    if args.resume is not None:
        ckpt = training.load_checkpoint(args.resume)
        saved = ckpt.get("run_config")
        missing = [k for k in RESUME_KEEPS if not isinstance(saved, dict) or k not in saved]
        if missing:
            raise CommandError(f"{args.resume}: the checkpoint lacks the run settings {missing} "
                               "(was it written by 'spikelab train'?)")
        cfg.update({k: saved[k] for k in RESUME_KEEPS})
        resume_path = Path(args.resume)
        run_dir = resume_path if resume_path.is_dir() else resume_path.parent
        del ckpt
    for k in RESUME_KEEPS:
        setattr(args, k, cfg[k])
    _check_args(args)
    config = training.TrainConfig(
        epochs=args.epochs, lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay,
        schedule=args.schedule, step_size=args.step_size, gamma=args.gamma, loss=args.loss, lam=args.lam,
        phi=args.phi, grad_clip=args.grad_clip, seed=args.seed, device=args.device, amp=args.amp,
        compile=args.compile,
    )
    rank, size = training.init_distributed(args.device)
    lead = rank == 0
    train_loader, test_loader, info = _loaders(cfg, batch_size=args.batch_size, seed=args.seed,
                                               num_workers=args.num_workers)
    cfg.update(num_classes=info.num_classes, input_shape=list(info.input_shape), is_event=info.is_event,
               world_size=size)
    if info.is_event:
        cfg["T"] = info.input_shape[0]
    torch.manual_seed(args.seed)
    model = _build_model(cfg)
    if run_dir is None:
        run_dir = Path(args.out) / (args.name or f"{args.model}-{Path(str(args.dataset)).name}-"
                                                 f"{time.strftime('%Y%m%d-%H%M%S')}")
        if args.name is not None and run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise CommandError(f"run folder {str(run_dir)!r} already exists: continue it with --resume {run_dir} "
                               "or choose another --name")
        k = 2
        while args.name is None and lead and run_dir.exists():  # never mix two runs in one folder
            run_dir, k = run_dir.with_name(f"{run_dir.name.rsplit('~', 1)[0]}~{k}"), k + 1
        if size > 1:  # only rank 0 writes, but every process must agree on the folder
            box = [str(run_dir)]
            dist.broadcast_object_list(box, src=0)
            run_dir = Path(box[0])
    stop = threading.Event()
    if lead:
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        device = training.select_device(args.device)
        print(f"training {args.model} ({n_params:,} parameters) on {info.name} "
              f"({len(train_loader.dataset)} train / {len(test_loader.dataset)} test, {info.num_classes} classes), "
              f"T={cfg['T']}, {config.loss.upper()} loss, {config.optimizer} lr {config.lr:g} {config.schedule}, "
              f"batch {args.batch_size}, {device}" + (f" x {size} processes" if size > 1 else "")
              + f" -> {run_dir}", flush=True)
    callbacks: list[Any] = [_Printer(config.epochs)]
    if args.diagnose:
        callbacks.insert(0, _doctor(model, test_loader, info.is_event, config))
    with _StopOnSigint(stop):
        history = training.fit(
            model, (train_loader, test_loader, info), config, callbacks=callbacks, stop_event=stop,
            run_dir=run_dir, run_config=cfg, resume=args.resume, progress=not args.no_progress and lead,
        )
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
    from spikelab import training
    from spikelab.metrics import ops_totals

    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise CommandError(f"--limit must be >= 1, got {args.limit}")
    rank, _ = training.init_distributed(args.device)
    ckpt = training.load_checkpoint(args.checkpoint)
    cfg = dict(ckpt["run_config"]) if isinstance(ckpt.get("run_config"), dict) else {}
    missing = [k for k in ("model", "dataset", "T", "num_classes", "input_shape", "is_event") if k not in cfg]
    if missing:
        raise CommandError(f"{args.checkpoint}: the checkpoint lacks the run settings {missing} "
                           "(was it written by 'spikelab train'?)")
    cfg.update(limit=args.limit, augment=False)
    cfg.setdefault("data_root", None)
    if args.dataset is not None:
        cfg.update(dataset=args.dataset, data_root=args.data_root)
    elif args.data_root is not None:
        cfg["data_root"] = args.data_root
    model = _build_model(cfg)
    model.load_state_dict(ckpt["model"])
    train_loader, test_loader, info = _loaders(cfg, batch_size=args.batch_size, seed=0)
    expected = tuple(cfg["input_shape"][1:] if cfg["is_event"] else cfg["input_shape"])
    got = tuple(info.input_shape[1:] if info.is_event else info.input_shape)
    if got != expected or info.is_event != cfg["is_event"]:
        raise CommandError(f"dataset {info.name!r} has samples of shape {tuple(info.input_shape)}, but the model was "
                           f"trained on {tuple(cfg['input_shape'])}")
    loader = test_loader if args.split == "test" else train_loader
    loss = cfg["loss"] if cfg.get("loss") in ("sdt", "tet") else "sdt"  # a custom loss is not stored: use SDT
    res = training.evaluate(model, loader, loss=loss,
                            lam=cfg.get("lam", 0.05), phi=cfg.get("phi", 1.0), device=args.device, ops=True,
                            progress=not args.no_progress and rank == 0, sequence_input=info.is_event)
    if rank != 0:
        return 0
    print(f"{cfg['model']} on {info.name} ({args.split}, {res['n']} samples, T={cfg['T']}): "
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
