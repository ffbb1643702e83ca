"""NIR -> spikelab: one spikelab module per NIR node, run node by node on whole ``[T, B, ...]`` sequences."""
from __future__ import annotations

import re
from collections.abc import Iterator

import nir
import numpy as np
import torch
import torch.fx as fx
from torch import nn

from spikelab._checks import check_time_first
from spikelab.layers import SeqToANN
from spikelab.neurons import IF, LIF, BaseNeuron
from spikelab.nir._modules import AffineInputLIF, Heaviside, Scale, SumPool2d
from spikelab.nir._params import Charge, from_nir_neuron


def _ints(v: object, n: int) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(v)).astype(int).ravel()
    if a.size not in (1, n):
        raise ValueError(f"expected 1 or {n} integers, got {a.tolist()}")
    return tuple(int(x) for x in (a if a.size == n else np.repeat(a, n)))


def _padding(v: object, n: int) -> str | tuple[int, ...]:
    if isinstance(v, bytes):
        v = v.decode()
    return v if isinstance(v, str) else _ints(v, n)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))


def _affine(node: nir.Affine | nir.Linear, name: str, ctx: dict) -> nn.Module:
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise ValueError(f"NIR node {name!r} ({type(node).__name__}) has a {w.ndim}-D weight; spikelab reads 2-D ones")
    bias = getattr(node, "bias", None)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(_tensor(w))
        if bias is not None:
            lin.bias.copy_(_tensor(np.broadcast_to(bias, (w.shape[0],))))
    return SeqToANN(lin)


def _conv(node: nir.Conv1d | nir.Conv2d, name: str, ctx: dict) -> nn.Module:
    w = np.asarray(node.weight)
    n = w.ndim - 2
    cls = nn.Conv2d if isinstance(node, nir.Conv2d) else nn.Conv1d
    conv = cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride, n),
               padding=_padding(node.padding, n), dilation=_ints(node.dilation, n), groups=int(node.groups))
    with torch.no_grad():
        conv.weight.copy_(_tensor(w))
        conv.bias.copy_(_tensor(np.broadcast_to(node.bias, (w.shape[0],))))
    return SeqToANN(conv)


def _pool(node: nir.AvgPool2d | nir.SumPool2d, name: str, ctx: dict) -> nn.Module:
    k, s, p = _ints(node.kernel_size, 2), _ints(node.stride, 2), _ints(node.padding, 2)
    return SeqToANN(nn.AvgPool2d(k, s, p) if isinstance(node, nir.AvgPool2d) else SumPool2d(k, s, p))


def _flatten(node: nir.Flatten, name: str, ctx: dict) -> nn.Module:
    start, end = int(node.start_dim), int(node.end_dim)  # per-sample dims; SeqToANN adds the merged batch axis
    return SeqToANN(nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end))


def _neuron(node: nir.LIF | nir.IF, name: str, ctx: dict) -> nn.Module:
    ch: Charge = from_nir_neuron(node, dt=ctx["dt"], discretisation=ctx["discretisation"], name=name)
    if isinstance(ch.k, float) and ch.k == 1.0 and isinstance(ch.c, float) and ch.c == 0.0:
        if ch.decay == 1.0:
            return IF(ch.v_th, reset="hard", v_reset=ch.v_reset)
        return LIF(ch.decay, ch.v_th, reset="hard", v_reset=ch.v_reset)
    return AffineInputLIF(ch.decay, ch.v_th, v_reset=ch.v_reset,
                          input_scale=_tensor(np.asarray(ch.k)), input_bias=_tensor(np.asarray(ch.c)))


#: NIR node type -> builder of the spikelab module that runs it on [T, B, ...].
NODE_LOADERS = {
    nir.Affine: _affine,
    nir.Linear: _affine,
    nir.Conv1d: _conv,
    nir.Conv2d: _conv,
    nir.AvgPool2d: _pool,
    nir.SumPool2d: _pool,
    nir.Flatten: _flatten,
    nir.LIF: _neuron,
    nir.IF: _neuron,
    nir.Threshold: lambda node, name, ctx: Heaviside(_tensor(node.threshold)),
    nir.Scale: lambda node, name, ctx: Scale(_tensor(node.scale)),
}


class NIRNetwork(nn.Module):
    """A network loaded from NIR: one spikelab module per node, run in graph order on ``[T, B, ...]`` sequences.

    Each node's input is the sum of the outputs of the nodes with an edge into it (NIR's rule). Spiking nodes are
    spikelab neurons (:class:`~spikelab.neurons.LIF`, :class:`~spikelab.neurons.IF`, or
    :class:`~spikelab.nir.AffineInputLIF` where NIR's ``R`` or ``v_leak`` need it), so :meth:`neurons`, recording
    and the metrics work as on a trained model. ``node_names`` maps each module key in ``layers`` to its NIR node
    name; ``metadata`` is the graph's metadata (for spikelab's files: ``dt``, ``discretisation``, notes).
    """

    def __init__(self, layers: dict[str, nn.Module], plan: list[tuple[str, tuple[str, ...]]],
                 output_sources: tuple[str, ...], *, input_key: str, input_shape: tuple[int, ...] | None,
                 node_names: dict[str, str], metadata: dict) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.plan = plan
        self.output_sources = output_sources
        self.input_key = input_key
        self.input_shape = input_shape
        self.node_names = dict(node_names)
        self.metadata = dict(metadata)

    def neurons(self) -> Iterator[tuple[str, BaseNeuron]]:
        """Every spiking layer as ``(module name, neuron)``, in graph order."""
        for name, module in self.named_modules():
            if isinstance(module, BaseNeuron):
                yield name, module

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Outputs ``[T, B, ...]`` (logits for spikelab's models) for inputs ``x_seq`` ``[T, B, ...]``.

        A model trained on static input (direct encoding) expects the input repeated at every step:
        ``spikelab.encoding.direct(x, T)``.
        """
        if not isinstance(x_seq, fx.Proxy):  # export traces this forward
            check_time_first(x_seq, "x_seq", min_dim=3 if self.input_shape else 2)
            if self.input_shape is not None and tuple(x_seq.shape[2:]) != self.input_shape:
                shape = ", ".join(str(d) for d in self.input_shape)
                raise ValueError(f"x_seq must have shape [T, B, {shape}] for this network, got {tuple(x_seq.shape)}")
        values = {self.input_key: x_seq}
        for key, sources in self.plan:
            values[key] = self.layers[key](self._sum(values, sources))
        return self._sum(values, self.output_sources)

    @staticmethod
    def _sum(values: dict, sources: tuple[str, ...]) -> torch.Tensor:
        x = values[sources[0]]
        for src in sources[1:]:
            x = x + values[src]
        return x


def _order(graph: nir.NIRGraph, start: str) -> list[str]:
    """Nodes in an order where every node comes after all nodes that feed it; refuses cycles."""
    preds = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    done, order = {start}, []
    pending = [n for n in graph.nodes if n != start]
    while pending:
        ready = [n for n in pending if preds[n] and all(p in done for p in preds[n])]
        if not ready:
            stuck = [n for n in pending if not preds[n]]
            if stuck:
                raise ValueError(f"NIR node {stuck[0]!r} has no input edge")
            raise ValueError(f"the NIR graph has a cycle through {pending[0]!r} (a recurrent connection); spikelab "
                             "loads feed-forward graphs, whose layers run on whole sequences")
        order += ready
        done.update(ready)
        pending = [n for n in pending if n not in done]
    return order


def build_network(graph: nir.NIRGraph, *, dt: float, discretisation: str) -> NIRNetwork:
    """A :class:`NIRNetwork` for ``graph`` (see :func:`spikelab.nir.load`)."""
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"spikelab loads NIR graphs with one Input and one Output node; this one has "
                         f"{len(inputs)} inputs ({inputs}) and {len(outputs)} outputs ({outputs})")
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.Input, nir.Output)) and type(node) not in NODE_LOADERS:
            known = ", ".join(sorted({t.__name__ for t in NODE_LOADERS}))
            what = "a subgraph" if isinstance(node, nir.NIRGraph) else f"a {type(node).__name__} node"
            raise ValueError(f"NIR node {name!r} is {what}, which spikelab cannot load (it reads {known}, Input "
                             "and Output)")
    keys: dict[str, str] = {}
    for name in graph.nodes:
        key = re.sub(r"\W", "_", name) or "node"
        while key in keys.values() or key[0].isdigit():
            key = f"n_{key}"
        keys[name] = key
    ctx = {"dt": dt, "discretisation": discretisation}
    layers, plan = {}, []
    for name in _order(graph, inputs[0]):
        sources = tuple(keys[a] for a, b in graph.edges if b == name)
        if name == outputs[0]:
            output_sources = sources
            continue
        node = graph.nodes[name]
        layers[keys[name]] = NODE_LOADERS[type(node)](node, name, ctx)
        plan.append((keys[name], sources))
    shape = graph.nodes[inputs[0]].input_type.get("input")
    return NIRNetwork(
        layers, plan, output_sources, input_key=keys[inputs[0]],
        input_shape=tuple(int(d) for d in np.atleast_1d(shape)) if shape is not None else None,
        node_names={keys[n]: n for n in graph.nodes}, metadata=dict(graph.metadata or {}),
    )
