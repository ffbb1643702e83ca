"""spikelab -> NIR: trace the model with torch.fx, map each layer to NIR nodes, fold batch norm, check shapes.

The model is traced down to its layers (:class:`~spikelab.layers.SeqToANN`, batch norm, neurons); each traced
value becomes a :class:`_Signal`, the NIR nodes whose outputs sum to it (NIR sums the edges that enter a node, so a
residual ``a + s`` needs no node of its own). One mapping function per layer kind is listed in ``_LAYERS``; one per
join in ``_JOINS``. Anything else is refused with its layer name and the reason.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import nir
import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikelab.layers import SeqToANN
from spikelab.neurons import IF, LIF, PLIF, BaseNeuron
from spikelab.nir._modules import AffineInputLIF, Heaviside, Scale, SumPool2d
from spikelab.nir._params import Charge, to_nir_neuron


@dataclass(frozen=True)
class _Signal:
    sources: tuple[str, ...]  # NIR nodes whose outputs sum to this value
    shape: tuple[int, ...]  # per-sample shape (no time, no batch)
    binary: bool  # only 0 and 1 (spikes): what the spike-only joins and max pooling of spikes need


#: Neurons whose charge is ``h = decay * v + k * I + c`` with a fixed or learned per-layer ``decay``.
_NEURONS = (LIF, IF, PLIF, AffineInputLIF)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return int(t[0]), int(t[1])


def neuron_charge(neuron: BaseNeuron, layer: str, *, force_hard_reset: bool) -> Charge:
    """A spikelab neuron's charge, threshold and reset through its public attributes (see :class:`Charge`).

    Refuses (``ValueError`` naming ``layer``) what NIR cannot hold: a soft or no reset unless
    ``force_hard_reset`` (then warns), and a start membrane ``v_init != 0`` (NIR neurons start at 0).
    """
    cls = type(neuron).__name__
    if type(neuron) not in _NEURONS:  # a subclass may change the equations that the mapping assumes
        known = ", ".join(n.__name__ for n in _NEURONS)
        raise ValueError(f"layer {layer!r} ({cls}) is a neuron type the NIR export does not know (it maps {known})")
    if neuron.reset_mode != "hard":
        if not force_hard_reset:
            raise ValueError(
                f"layer {layer!r} ({cls}) uses reset={neuron.reset_mode!r}, but NIR neurons only reset to v_reset "
                "(a hard reset); train with reset='hard', or pass force_hard_reset=True to export it with a hard "
                "reset anyway (the dynamics change)"
            )
        warnings.warn(
            f"layer {layer!r} ({cls}) has reset={neuron.reset_mode!r}; it is exported with NIR's hard reset to "
            f"v_reset={neuron.v_reset:g}, so the exported network's dynamics differ from this one",
            UserWarning, stacklevel=4,
        )
    v_init = getattr(neuron, "v_init", 0.0)
    if isinstance(v_init, torch.Tensor) or float(v_init) != 0.0:
        raise ValueError(f"layer {layer!r} ({cls}) starts its membrane at v_init={v_init}; NIR neurons start at 0")
    decay = neuron.decay
    decay = float(decay.detach()) if isinstance(decay, torch.Tensor) else float(decay)
    if isinstance(neuron, AffineInputLIF):  # a loaded neuron: its per-neuron input scale and offset
        k, c = (b.detach().cpu().double().numpy() for b in (neuron.input_scale, neuron.input_bias))
        return Charge(decay, k, c, float(neuron.v_th), float(neuron.v_reset))
    # the factor on the input current: 1, or PLIF's 1/tau = 1 - decay in its published form (decay_input),
    # taken from the neuron's own input hook so that the file holds the float32 value the neuron multiplies by
    scale_input = getattr(neuron, "_input", None)
    k = 1.0
    if scale_input is not None:
        p = next(neuron.parameters(), None)
        one = torch.ones(()) if p is None else torch.ones((), dtype=p.dtype, device=p.device)
        with torch.no_grad():
            k = float(scale_input(one))
    return Charge(decay, k, 0.0, float(neuron.v_th), float(neuron.v_reset))


class _Exporter:
    def __init__(self, *, dt: float, discretisation: str, force_hard_reset: bool) -> None:
        self.dt, self.discretisation, self.force_hard_reset = dt, discretisation, force_hard_reset
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.foldable: set[str] = set()  # conv/affine nodes whose output only one consumer reads
        self.changed_resets: list[str] = []

    # ---- graph building ------------------------------------------------------------------------------------------
    def add(self, name: str, node: nir.NIRNode, *inputs: _Signal) -> str:
        base, k = name, 2
        while name in self.nodes:
            name, k = f"{base}_{k}", k + 1
        self.nodes[name] = node
        seen = set()
        for signal in inputs:
            for src in signal.sources:
                if src in seen:
                    raise ValueError(f"layer {base!r} reads the output of {src!r} twice; NIR edges cannot repeat")
                seen.add(src)
                self.edges.append((src, name))
        return name

    # ---- one function per layer kind -----------------------------------------------------------------------------
    def mapping(self, m: nn.Module, name: str) -> Callable[..., _Signal]:
        """The mapping function for layer ``m``, or a ``ValueError`` naming it."""
        for cls, fn in _LAYERS:
            if isinstance(m, cls):
                return fn
        hint = " (an ANN twin's activation? export the spiking network)" if isinstance(
            m, (nn.ReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU)) else ""
        raise ValueError(f"layer {name!r} ({type(m).__name__}) has no NIR mapping{hint}")

    def layer(self, m: nn.Module, name: str, x: _Signal, out_shape: tuple[int, ...], single_use: bool) -> _Signal:
        return self.mapping(m, name)(self, m, name, x, out_shape, single_use)

    def sequence(self, m: SeqToANN, name: str, x: _Signal, single_use: bool) -> _Signal:
        """The stateless layers inside a :class:`SeqToANN`, one after the other (shapes from a zero sample)."""
        inner = m.module
        children = list(inner.named_children()) if isinstance(inner, nn.Sequential) else [("", inner)]
        p = next(m.parameters(), None)
        y = torch.zeros(1, *x.shape, device=p.device if p is not None else "cpu",
                        dtype=p.dtype if p is not None else torch.float32)
        for i, (child, layer) in enumerate(children):
            y = layer(y)
            last = i == len(children) - 1
            x = self.layer(layer, f"{name}.{child}" if child else name, x, tuple(y.shape[1:]),
                           single_use if last else True)
        return x

    def conv(self, m: nn.Conv1d | nn.Conv2d, name, x, out_shape, single_use) -> _Signal:
        if m.padding_mode != "zeros":
            raise ValueError(f"layer {name!r}: NIR convolutions pad with zeros, this one with {m.padding_mode!r}")
        w = m.weight.detach().cpu().numpy()
        b = np.zeros(w.shape[0], w.dtype) if m.bias is None else m.bias.detach().cpu().numpy()
        pad = m.padding if isinstance(m.padding, str) else tuple(int(p) for p in m.padding)
        if isinstance(m, nn.Conv2d):
            node = nir.Conv2d(input_shape=tuple(x.shape[1:]), weight=w, stride=tuple(m.stride), padding=pad,
                              dilation=tuple(m.dilation), groups=m.groups, bias=b)
        else:
            node = nir.Conv1d(input_shape=int(x.shape[1]), weight=w, stride=int(m.stride[0]),
                              padding=pad if isinstance(pad, str) else pad[0], dilation=int(m.dilation[0]),
                              groups=m.groups, bias=b)
        out = self.add(name, node, x)
        if single_use:
            self.foldable.add(out)
        return _Signal((out,), out_shape, False)

    def linear(self, m: nn.Linear, name, x, out_shape, single_use) -> _Signal:
        if len(x.shape) != 1:
            raise ValueError(f"layer {name!r}: NIR's Affine takes a flat input, this Linear gets {x.shape} per sample")
        w = m.weight.detach().cpu().numpy()
        node = nir.Linear(weight=w) if m.bias is None else nir.Affine(weight=w, bias=m.bias.detach().cpu().numpy())
        out = self.add(name, node, x)
        if single_use:
            self.foldable.add(out)
        return _Signal((out,), out_shape, False)

    def batchnorm(self, m: _BatchNorm, name, x, out_shape, single_use) -> _Signal:
        target = x.sources[0] if len(x.sources) == 1 else None
        if target not in self.foldable:
            raise ValueError(
                f"layer {name!r} ({type(m).__name__}): NIR has no batch norm; it is folded into the conv or linear "
                "layer before it, but here it does not follow one whose output it alone reads"
            )
        if m.running_mean is None or m.running_var is None:
            raise ValueError(f"layer {name!r}: batch norm without running statistics cannot be folded for inference")
        mean, var = m.running_mean.detach().double().cpu(), m.running_var.detach().double().cpu()
        gamma = m.weight.detach().double().cpu() if m.weight is not None else torch.ones_like(mean)
        beta = m.bias.detach().double().cpu() if m.bias is not None else torch.zeros_like(mean)
        scale = (gamma / torch.sqrt(var + m.eps)).numpy()
        node = self.nodes[target]
        w = node.weight.astype(np.float64) * scale.reshape(-1, *([1] * (node.weight.ndim - 1)))
        b0 = getattr(node, "bias", None)
        b = ((np.zeros(len(scale)) if b0 is None else b0.astype(np.float64)) - mean.numpy()) * scale + beta.numpy()
        dtype = node.weight.dtype
        if isinstance(node, (nir.Linear, nir.Affine)):
            folded = nir.Affine(weight=w.astype(dtype), bias=b.astype(dtype))
        else:
            kw = dict(stride=node.stride, padding=node.padding, dilation=node.dilation, groups=node.groups)
            folded = type(node)(input_shape=node.input_shape, weight=w.astype(dtype), bias=b.astype(dtype), **kw)
        folded.metadata = {"spikelab_layer": f"{target} + {name} (batch norm folded, eval mode)"}
        self.nodes[target] = folded
        self.foldable.discard(target)
        if single_use:
            self.foldable.add(target)
        return x

    def avgpool(self, m: nn.AvgPool2d, name, x, out_shape, single_use) -> _Signal:
        k = _pair(m.kernel_size)
        s, p = _pair(m.stride if m.stride is not None else k), _pair(m.padding)
        if m.ceil_mode or m.divisor_override is not None or (any(p) and not m.count_include_pad):
            raise ValueError(f"layer {name!r}: NIR's AvgPool2d has no ceil_mode, divisor_override or "
                             "count_include_pad=False")
        return self._pool(nir.AvgPool2d, name, x, out_shape, k, s, p)

    def adaptive_avgpool(self, m: nn.AdaptiveAvgPool2d, name, x, out_shape, single_use) -> _Signal:
        h, w = x.shape[1:]
        size = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size, m.output_size)
        oh, ow = (h if size[0] is None else int(size[0])), (w if size[1] is None else int(size[1]))
        if h % oh or w % ow:
            raise ValueError(f"layer {name!r}: adaptive pooling of {h}x{w} to {oh}x{ow} has unequal windows, "
                             "which NIR's AvgPool2d cannot express")
        return self._pool(nir.AvgPool2d, name, x, out_shape, (h // oh, w // ow), (h // oh, w // ow), (0, 0))

    def sumpool(self, m: SumPool2d, name, x, out_shape, single_use) -> _Signal:
        return self._pool(nir.SumPool2d, name, x, out_shape, m.kernel_size, m.stride, m.padding)

    def _pool(self, cls, name, x, out_shape, k, s, p) -> _Signal:
        node = cls(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p))
        return _Signal((self.add(name, node, x),), out_shape, False)

    def maxpool(self, m: nn.MaxPool2d, name, x, out_shape, single_use) -> _Signal:
        if not x.binary:
            raise ValueError(f"layer {name!r}: NIR has no max pooling; max pooling of spikes is exported as a sum "
                             "pooling and a threshold at 0.5 (a logical OR), but this layer's input is not spikes")
        k = _pair(m.kernel_size)
        s, p = _pair(m.stride if m.stride is not None else k), _pair(m.padding)
        if m.ceil_mode or _pair(m.dilation) != (1, 1) or m.return_indices:
            raise ValueError(f"layer {name!r}: max pooling with ceil_mode, dilation or return_indices has no NIR form")
        summed = self._pool(nir.SumPool2d, name, x, out_shape, k, s, p)
        return self.threshold(f"{name}.or", summed, 0.5)

    def flatten(self, name: str, x: _Signal, start: int, end: int) -> _Signal:
        """Flatten per-sample dims ``start..end`` (non-negative)."""
        if start >= end:
            return x
        node = nir.Flatten(input_type={"input": np.array(x.shape)}, start_dim=start,
                           end_dim=-1 if end == len(x.shape) - 1 else end)
        out_shape = tuple(x.shape[:start]) + (int(np.prod(x.shape[start:end + 1])),) + tuple(x.shape[end + 1:])
        return _Signal((self.add(name, node, x),), out_shape, x.binary)

    def flatten_layer(self, m: nn.Flatten, name, x, out_shape, single_use) -> _Signal:
        ndim = len(x.shape) + 1  # inside SeqToANN: [T*B, ...]
        start, end = (d % ndim for d in (m.start_dim, m.end_dim))
        if start == 0:
            raise ValueError(f"layer {name!r} flattens the batch axis; NIR shapes have none")
        return self.flatten(name, x, start - 1, end - 1)

    def passthrough(self, m, name, x, out_shape, single_use) -> _Signal:
        return x

    def neuron(self, m: BaseNeuron, name, x, out_shape, single_use) -> _Signal:
        if m.reset_mode != "hard" and self.force_hard_reset:
            self.changed_resets.append(name)
        charge = neuron_charge(m, name, force_hard_reset=self.force_hard_reset)
        node = to_nir_neuron(charge, x.shape, dt=self.dt, discretisation=self.discretisation, layer=name)
        node.metadata = {"spikelab_layer": name, "spikelab_neuron": type(m).__name__,
                         "dropped": f"surrogate {m.surrogate!r}, detach_reset={m.detach_reset} (training only)"}
        return _Signal((self.add(name, node, x),), x.shape, True)

    def heaviside(self, m: Heaviside, name, x, out_shape, single_use) -> _Signal:
        node = nir.Threshold(threshold=np.broadcast_to(m.threshold.detach().cpu().numpy(), x.shape).copy())
        return _Signal((self.add(name, node, x),), x.shape, True)

    def scale(self, m: Scale, name, x, out_shape, single_use) -> _Signal:
        node = nir.Scale(scale=np.broadcast_to(m.scale.detach().cpu().numpy(), x.shape).copy())
        return _Signal((self.add(name, node, x),), x.shape, False)

    def threshold(self, name: str, x: _Signal, theta: float) -> _Signal:
        node = nir.Threshold(threshold=np.full(x.shape, theta, dtype=np.float32))
        return _Signal((self.add(name, node, x),), x.shape, True)

    def negate(self, name: str, x: _Signal) -> _Signal:
        return _Signal((self.add(name, nir.Scale(scale=np.full(x.shape, -1.0, dtype=np.float32)), x),), x.shape, False)

    # ---- joins of two signals ------------------------------------------------------------------------------------
    def join(self, connect: object, name: str, a: _Signal, s: _Signal) -> _Signal:
        if a.shape != s.shape:
            raise ValueError(f"join {name!r} adds shapes {a.shape} and {s.shape}")
        if connect == "ADD":
            return _Signal(a.sources + s.sources, a.shape, False)
        if connect not in _JOINS:
            raise ValueError(f"join {name!r} ({connect!r}) has no NIR form (known: ADD, {', '.join(_JOINS)})")
        if not (a.binary and s.binary):
            raise ValueError(f"join {name!r} ({connect}) is exported as thresholds on sums of spikes, which is exact "
                             "only for binary inputs; here an input is not spikes")
        return _JOINS[connect](self, name, a, s)


def _and(ex: _Exporter, name: str, a: _Signal, s: _Signal) -> _Signal:  # a * s = [a + s > 1.5]
    return ex.threshold(f"{name}.and", _Signal(a.sources + s.sources, a.shape, False), 1.5)


def _iand(ex: _Exporter, name: str, a: _Signal, s: _Signal) -> _Signal:  # (1 - a) * s = [s - a > 0.5]
    return ex.threshold(f"{name}.iand", _Signal(ex.negate(f"{name}.not", a).sources + s.sources, a.shape, False), 0.5)


def _or(ex: _Exporter, name: str, a: _Signal, s: _Signal) -> _Signal:  # a + s - a s = [a + s > 0.5]
    return ex.threshold(f"{name}.or", _Signal(a.sources + s.sources, a.shape, False), 0.5)


def _xor(ex: _Exporter, name: str, a: _Signal, s: _Signal) -> _Signal:  # [a + s > 0.5] - [a + s > 1.5]
    both = _and(ex, name, a, s)
    either = _or(ex, name, a, s)
    return _Signal(either.sources + ex.negate(f"{name}.not", both).sources, a.shape, True)


_JOINS = {"AND": _and, "IAND": _iand, "OR": _or, "XOR": _xor}

_LAYERS = (
    (BaseNeuron, _Exporter.neuron),
    ((nn.Conv1d, nn.Conv2d), _Exporter.conv),
    (nn.Linear, _Exporter.linear),
    (_BatchNorm, _Exporter.batchnorm),
    (nn.AvgPool2d, _Exporter.avgpool),
    (nn.AdaptiveAvgPool2d, _Exporter.adaptive_avgpool),
    (nn.MaxPool2d, _Exporter.maxpool),
    (SumPool2d, _Exporter.sumpool),
    (nn.Flatten, _Exporter.flatten_layer),
    ((nn.Identity, nn.Dropout), _Exporter.passthrough),
    (Heaviside, _Exporter.heaviside),
    (Scale, _Exporter.scale),
)
