"""Measurements of a spiking network: accuracy, per-layer firing rates, synaptic operations and energy.

Meters follow ``reset()`` / ``update(...)`` / ``compute()``. The hook-based ones (:class:`FiringRates`,
:class:`SpikeSample`, :class:`SynapticOps`) observe a model while attached (``with meter:`` or ``attach()`` /
``detach()``): every forward pass through the model updates them. ``sync()`` sums a meter's counts over the processes
of a ``torch.distributed`` run (a no-op otherwise).

Energy (45 nm, SPEC section 5): ``E = 0.9 pJ * #AC + 4.6 pJ * #MAC``. A conv or linear layer whose input is binary
(spikes) counts ``ops * input firing rate`` accumulates (AC); any other layer counts its full ``ops`` as
multiply-accumulates (MAC); each neuron adds one AC per element (its membrane update). ``ops`` of a layer is one
multiply-accumulate per weight use: ``out.numel() * in_channels / groups * prod(kernel_size)`` for a conv,
``out.numel() * in_features`` for a linear layer (bias ignored). A layer marked with :func:`count_as_macs` (a
non-spike pathway, such as a DSNN's accumulation pathway) counts MACs whatever its input.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from spikelab._checks import check_int, check_real, check_tensor, check_tensor_range
from spikelab.layers import SeqToANN, StaticStem, TdBatchNorm
from spikelab.losses import rate_accuracy, rate_predict
from spikelab.neurons import BaseNeuron

E_AC_PJ = 0.9  # energy of one accumulate, pJ (45 nm)
E_MAC_PJ = 4.6  # energy of one multiply-accumulate, pJ (45 nm)
OPS_KEYS = ("layer", "type", "input_rate", "acs", "macs", "energy_pj")
MAC_MARK = "spikelab_counts_macs"  # attribute set by count_as_macs

__all__ = [
    "E_AC_PJ", "E_MAC_PJ", "OPS_KEYS", "accuracy", "Mean", "Accuracy", "FiringRates", "SpikeSample",
    "SynapticOps", "ops_table", "ops_totals", "layer_names", "count_as_macs",
]


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose prediction ``argmax(mean_t O[t])`` equals the target.

    Args:
        outputs: logits ``[T, B, C]``.
        targets: class indices ``[B]``.
    """
    return rate_accuracy(outputs, targets)


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce(values: list[float]) -> list[float]:
    """Sum a list of numbers over all processes (float64 on the process group's device)."""
    if not _is_distributed() or not values:
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


class Mean:
    """Weighted running mean: ``sum(value * n) / sum(n)`` (e.g. the loss over an epoch, weighted by batch size)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, value: float, n: int = 1) -> None:
        """Add ``value`` (a mean over ``n`` samples; a 0-d tensor is read as a number, detached)."""
        if isinstance(value, torch.Tensor):
            value = value.detach()
        self.total += check_real(value, "value") * check_int(n, "n", minimum=0)
        self.count += n

    def compute(self) -> float | None:
        """The mean so far, or None before any update."""
        return self.total / self.count if self.count else None

    def sync(self) -> None:
        """Sum over the processes of a distributed run."""
        self.total, count = _all_reduce([self.total, float(self.count)])
        self.count = int(round(count))


class Accuracy:
    """Fraction of correct rate-coded predictions, ``argmax(mean_t O[t]) == y``, over all updates."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.correct, self.count = 0, 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        """Add a batch (logits ``[T, B, C]``, targets ``[B]``); returns this batch's accuracy."""
        check_tensor(targets, "targets")
        pred = rate_predict(outputs)
        if targets.shape != pred.shape:
            raise ValueError(f"targets must be [B] = [{pred.shape[0]}], got shape {tuple(targets.shape)}")
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise TypeError(f"targets must hold integer class indices, got {targets.dtype}")  # NaN never matches
        check_tensor_range(targets, "targets", 0, outputs.shape[-1] - 1, " (class indices)")
        correct = int((pred == targets).sum())
        self.correct += correct
        self.count += targets.numel()
        return correct / max(targets.numel(), 1)

    def compute(self) -> float | None:
        """Accuracy so far, or None before any update."""
        return self.correct / self.count if self.count else None

    def sync(self) -> None:
        """Sum over the processes of a distributed run."""
        c, n = _all_reduce([float(self.correct), float(self.count)])
        self.correct, self.count = int(round(c)), int(round(n))


def layer_names(model: nn.Module) -> dict[nn.Module, str]:
    """Readable name of every submodule: its qualified name without the ``.module`` step of wrappers.

    A conv inside ``SeqToANN`` (or ``StaticStem(SeqToANN(conv))``) at ``stem.module.module`` is called ``stem``;
    the Linear of ``SeqToANN(nn.Dropout(), nn.Linear(...))`` at ``head.module.1`` is ``head.1``.
    The root module is called by its class name.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    names: dict[nn.Module, str] = {}
    display: dict[str, str] = {"": ""}
    modules = dict(model.named_modules())
    for path, module in modules.items():
        if path:
            parent_path, _, last = path.rpartition(".")
            parent = display[parent_path]
            if last == "module" and isinstance(modules[parent_path], (SeqToANN, StaticStem)):
                display[path] = parent
            else:
                display[path] = f"{parent}.{last}" if parent else last
        names.setdefault(module, display[path] or type(model).__name__)
    return names


class _HookMeter:
    """Shared attach / detach / context-manager logic for meters that observe a model through forward hooks."""

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self._handles: list[Any] = []
        self.reset()

    def _targets(self) -> Iterator[tuple[str, nn.Module]]:
        raise NotImplementedError

    def _hook(self, name: str):  # returns a forward hook bound to the layer name
        raise NotImplementedError

    def attach(self) -> "_HookMeter":
        """Start observing the model's forward passes (idempotent)."""
        if not self._handles:
            self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self._targets()]
        return self

    def detach(self) -> None:
        """Stop observing (the counts are kept)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "_HookMeter":
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()


class FiringRates(_HookMeter):
    """Mean firing rate of every spiking layer (each :class:`~spikelab.neurons.BaseNeuron`), in spikes per neuron
    per time step: ``sum(spikes) / (T * B * neurons)`` over all observed forward passes.

    ``compute()`` returns ``{layer_name: rate}`` in network order (layers not yet run are left out).
    """

    def reset(self) -> None:
        self._spikes: dict[str, torch.Tensor] = {}  # summed on the spikes' device, read at compute()
        self._count: dict[str, int] = {}

    def _targets(self) -> Iterator[tuple[str, nn.Module]]:
        names = layer_names(self.model)
        return ((names[m], m) for m in self.model.modules() if isinstance(m, BaseNeuron))

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, spikes: torch.Tensor) -> None:
            s = spikes.detach().sum(dtype=torch.float64)
            self._spikes[name] = self._spikes[name] + s if name in self._spikes else s
            self._count[name] = self._count.get(name, 0) + spikes.numel()
        return hook

    def update(self, name: str, spikes: torch.Tensor) -> None:
        """Add the spikes ``[T, B, ...]`` of layer ``name`` by hand (the hooks call this for you)."""
        check_tensor(spikes, "spikes")
        self._hook(name)(self.model, (), spikes)

    def compute(self) -> dict[str, float]:
        """``{layer_name: spikes per neuron per step}``."""
        return {k: float(self._spikes[k]) / self._count[k] for k in self._count if self._count[k]}

    def sync(self) -> None:
        """Sum over the processes of a distributed run (every process must have run the same layers)."""
        keys = list(self._count)
        vals = _all_reduce([float(self._spikes[k]) for k in keys] + [float(self._count[k]) for k in keys])
        for i, k in enumerate(keys):
            self._spikes[k] = torch.tensor(vals[i], dtype=torch.float64)
            self._count[k] = int(round(vals[len(keys) + i]))


class SpikeSample(_HookMeter):
    """Spikes of one sample in every spiking layer during the last forward pass, for rasters.

    ``compute()`` returns ``{layer_name: [[0/1, ...] per neuron] per time step}`` (plain lists ``[T][N]``, the
    neurons flattened and cut to the first ``max_neurons``), JSON-serialisable.
    """

    def __init__(self, model: nn.Module, *, sample: int = 0, max_neurons: int = 256) -> None:
        self.sample = check_int(sample, "sample", minimum=0)
        self.max_neurons = check_int(max_neurons, "max_neurons", minimum=1)
        super().__init__(model)

    def reset(self) -> None:
        self._spikes: dict[str, torch.Tensor] = {}

    def _targets(self) -> Iterator[tuple[str, nn.Module]]:
        names = layer_names(self.model)
        return ((names[m], m) for m in self.model.modules() if isinstance(m, BaseNeuron))

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, spikes: torch.Tensor) -> None:
            if spikes.dim() < 2 or spikes.shape[1] <= self.sample:
                raise ValueError(f"sample={self.sample} is outside the batch of layer {name!r} "
                                 f"(spikes shape {tuple(spikes.shape)})")
            s = spikes.detach()[:, self.sample].reshape(spikes.shape[0], -1)[:, : self.max_neurons]  # [T, N]
            self._spikes[name] = s.to("cpu", torch.int8)
        return hook

    def update(self, name: str, spikes: torch.Tensor) -> None:
        """Keep the spikes ``[T, B, ...]`` of layer ``name`` by hand (the hooks call this for you)."""
        check_tensor(spikes, "spikes")
        self._hook(name)(self.model, (), spikes)

    def compute(self) -> dict[str, list[list[int]]]:
        """``{layer_name: [T][N] spikes}`` of the chosen sample in the last forward pass."""
        return {k: v.tolist() for k, v in self._spikes.items()}


_SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def count_as_macs(module: nn.Module) -> nn.Module:
    """Mark every conv and linear layer inside ``module`` (itself included) as a non-spike layer, and return it.

    :class:`SynapticOps` then counts a marked layer's full ops as MACs even when its input happens to be binary: a
    real-valued pathway (e.g. the auxiliary accumulation pathway of a dual-stream network, SPEC section 5) runs on
    multiply-accumulate hardware whatever values one batch brings. Unmarked layers are classified per batch.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    for m in module.modules():
        if isinstance(m, _SYNAPTIC):
            setattr(m, MAC_MARK, True)
    return module


def _conv_ops(module: nn.Module, out: torch.Tensor) -> int:
    k = math.prod(module.kernel_size) * module.in_channels // module.groups  # type: ignore[attr-defined]
    return out.numel() * k


_TIME_FIRST = (BaseNeuron, SeqToANN, TdBatchNorm)  # layers whose input is [T, B, ...]: dimension 1 is the batch


class SynapticOps(_HookMeter):
    """Synaptic operations and energy per layer (SPEC section 5), per sample, over all observed forward passes.

    Counts every ``nn.Conv1d/2d/3d`` and ``nn.Linear`` call (AC if its input is binary, scaled by the input firing
    rate; MAC otherwise, and always for a layer marked by :func:`count_as_macs`) and every spiking neuron (one AC
    per element). After each forward pass call ``update()``: the meter counts the samples itself, reading the batch
    ``B`` from the input ``[T, B, ...]`` of the first time-first layer that ran (a neuron,
    :class:`~spikelab.layers.SeqToANN` or :class:`~spikelab.layers.TdBatchNorm`), or ``x.shape[0]`` for a model
    without one (a plain network on a static batch). ``update(batch_size)`` checks a given count against what it
    saw; ``compute()`` divides by the total.

    ``compute()`` returns one dict per layer in network order with keys ``layer``, ``type`` (``"conv"``,
    ``"linear"``, ``"neuron"``), ``input_rate`` (firing rate of a binary input, else None), ``acs``, ``macs``,
    ``energy_pj`` (``0.9 * acs + 4.6 * macs``), all per sample.
    """

    def reset(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self.samples = 0
        self._seen: list[int] = []  # batch of each forward pass since the last update()
        self._pass_batch: int | None = None

    def _targets(self) -> Iterator[tuple[str, nn.Module]]:
        names = layer_names(self.model)
        for m in self.model.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, BaseNeuron)):
                yield names[m], m

    def attach(self) -> "SynapticOps":
        """Start observing the model's forward passes (idempotent)."""
        if not self._handles:
            super().attach()
            self._handles.append(self.model.register_forward_pre_hook(self._start_pass))
            for m in self.model.modules():
                if isinstance(m, _TIME_FIRST):
                    self._handles.append(m.register_forward_hook(self._see_batch))
            self._handles.append(self.model.register_forward_hook(self._end_pass))  # after the others
        return self

    def _start_pass(self, module: nn.Module, inputs: Any) -> None:
        self._pass_batch = None

    def _see_batch(self, module: nn.Module, inputs: Any, out: Any) -> None:
        x = inputs[0] if inputs else None
        if self._pass_batch is None and isinstance(x, torch.Tensor) and x.dim() >= 2:
            self._pass_batch = int(x.shape[1])  # [T, B, ...]

    def _end_pass(self, module: nn.Module, inputs: Any, out: Any) -> None:
        if self._pass_batch is None:  # no time-first layer ran: a plain network on a static batch [B, ...]
            x = inputs[0] if inputs else None
            self._pass_batch = int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() >= 1 else None
        if self._pass_batch is not None:
            self._seen.append(self._pass_batch)
        self._pass_batch = None

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> None:
            x = inputs[0].detach()
            if isinstance(module, BaseNeuron):
                kind, ops, binary = "neuron", x.numel(), False
            else:
                kind = "linear" if isinstance(module, nn.Linear) else "conv"
                ops = out.numel() * module.in_features if kind == "linear" else _conv_ops(module, out)
                binary = not getattr(module, MAC_MARK, False) and bool(((x == 0) | (x == 1)).all())
            row = self._rows.setdefault(name, dict(type=kind, acs=0.0, macs=0.0, spikes=0.0, elements=0))
            if kind == "neuron":
                row["acs"] += ops
            elif binary:
                rate = float(x.sum(dtype=torch.float64)) / max(x.numel(), 1)
                row["acs"] += ops * rate
                row["spikes"] += rate * x.numel()
                row["elements"] += x.numel()
            else:
                row["macs"] += ops
        return hook

    def update(self, batch_size: int | None = None) -> None:
        """Count the samples of the forward passes since the last update (call once per batch).

        ``batch_size=None`` takes the count the meter saw; a given ``batch_size`` must agree with it (a sequence
        ``[T, B, ...]`` holds ``B = x.shape[1]`` samples, not ``x.shape[0]``).
        """
        seen = sum(self._seen) if self._seen else None
        self._seen = []
        if batch_size is None:
            if seen is None:
                raise ValueError("no forward pass seen since the last update(): run the model with the meter "
                                 "attached, or give batch_size")
            self.samples += seen
            return
        check_int(batch_size, "batch_size", minimum=1)
        if seen is not None and seen != batch_size:
            raise ValueError(
                f"batch_size={batch_size}, but the forward passes since the last update() carried {seen} samples "
                "(read at the first time-first layer, [T, B, ...]); for a sequence input B is x.shape[1]"
            )
        self.samples += batch_size

    def compute(self) -> list[dict[str, Any]]:
        """Per-layer rows (see the class docstring), counts per sample."""
        if not self.samples:
            raise ValueError("no samples counted: call update(batch_size) after each forward pass")
        rows = []
        for name, r in self._rows.items():
            acs, macs = r["acs"] / self.samples, r["macs"] / self.samples
            rows.append(dict(
                layer=name, type=r["type"],
                input_rate=r["spikes"] / r["elements"] if r["elements"] else None,
                acs=acs, macs=macs, energy_pj=E_AC_PJ * acs + E_MAC_PJ * macs,
            ))
        return rows

    def sync(self) -> None:
        """Sum over the processes of a distributed run (every process must have run the same layers)."""
        keys = list(self._rows)
        fields = ("acs", "macs", "spikes", "elements")
        vals = _all_reduce([float(self._rows[k][f]) for k in keys for f in fields] + [float(self.samples)])
        for i, k in enumerate(keys):
            for j, f in enumerate(fields):
                self._rows[k][f] = vals[i * len(fields) + j]
        self.samples = int(round(vals[-1]))


def ops_table(model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None) -> list[dict[str, Any]]:
    """Synaptic operations and energy per layer for one forward pass of ``x`` (see :class:`SynapticOps`).

    Runs ``model(x)`` in eval mode without gradients and restores the training mode.

    Args:
        model: the network.
        x: a model input: a static batch ``[B, ...]`` or a sequence ``[T, B, ...]``.
        batch_size: the number of samples in ``x``; default: ``B`` as the model's layers see it (see
            :class:`SynapticOps`); if given, it must agree.
    """
    check_tensor(x, "x")
    if batch_size is not None:
        check_int(batch_size, "batch_size", minimum=1)
    meter = SynapticOps(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), meter:
            model(x)
    finally:
        model.train(was_training)
    meter.update(batch_size)
    return meter.compute()


def ops_totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Sum the ``acs``, ``macs`` and ``energy_pj`` of a per-layer table."""
    if not isinstance(rows, list):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    return {k: float(sum(r[k] for r in rows)) for k in ("acs", "macs", "energy_pj")}
