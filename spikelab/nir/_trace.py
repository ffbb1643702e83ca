"""Trace a model with torch.fx down to spikelab's layers and walk the trace into NIR nodes and edges."""
from __future__ import annotations

import operator
from collections.abc import Callable

import nir
import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.modules.batchnorm import _BatchNorm

from spikelab.layers import SeqToANN
from spikelab.models._blocks import SpikingModel
from spikelab.models.resnet import sew_function
from spikelab.neurons import BaseNeuron
from spikelab.nir._export import _Exporter, _Signal
from spikelab.nir._modules import Heaviside, Scale

_LEAVES = (SeqToANN, _BatchNorm, BaseNeuron, Heaviside, Scale)


class _Tracer(fx.Tracer):
    """Stops at spikelab's layers (and torch.nn's), goes through containers, blocks and models."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=(sew_function,))

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, _LEAVES):
            return True
        if isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            return False
        return super().is_leaf_module(m, qualname)


class _SequencePath(nn.Module):
    """A :class:`SpikingModel`'s sequence path ``head(body(stem(x_seq)))``, under the model's own layer names."""

    def __init__(self, model: SpikingModel) -> None:
        super().__init__()
        self.stem, self.body, self.head = model.stem, model.body, model.head

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x_seq)))


def _per_sample(node: fx.Node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise ValueError(f"{node.name!r} does not give one tensor; NIR graphs carry one tensor per edge")
    return tuple(int(d) for d in meta.shape[2:])


def _where(node: fx.Node) -> str:
    """The qualified name of the module whose forward made ``node`` ("" at the top level)."""
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _time_flatten(ex: _Exporter, name: str, x: _Signal, start: object, end: object) -> _Signal:
    ndim = len(x.shape) + 2
    if not isinstance(start, int) or not isinstance(end, int):
        raise ValueError(f"{name!r}: flatten with non-constant dimensions cannot be exported")
    start, end = start % ndim, end % ndim
    if start < 2:
        raise ValueError(f"{name!r} flattens the time or batch axis of [T, B, ...]; NIR shapes have neither")
    return ex.flatten(name, x, start - 2, end - 2)


def walk(root: nn.Module, x_seq: torch.Tensor, ex: _Exporter, rename: Callable[[str], str], what: str) -> None:
    """Trace ``root`` on ``x_seq`` ``[T, B, ...]`` and add its nodes and edges to ``ex``."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(root)
    except Exception as err:  # a forward with Python control flow on tensors, or a layer fx cannot see through
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"cannot trace {what} into a graph of layers ({reason}); export needs a forward that only calls "
            "layers, adds their outputs and joins them with spikelab's SEW joins"
        ) from None
    gm = fx.GraphModule(tracer.root, graph)
    for node in graph.nodes:  # name an unsupported layer before running anything
        if node.op == "call_module" and not isinstance(gm.get_submodule(node.target), SeqToANN):
            ex.mapping(gm.get_submodule(node.target), rename(node.target))
    try:
        ShapeProp(gm).propagate(x_seq)
    except Exception as err:
        cause = err.__cause__ or err
        reason = f"{type(cause).__name__}: {cause}".strip().splitlines()[0][:300]
        raise ValueError(f"sample_input of shape {tuple(x_seq.shape)} does not run through {what} ({reason})") from None
    values: dict[fx.Node, _Signal] = {}

    def signal(arg: object, where: str) -> _Signal:
        if not isinstance(arg, fx.Node) or arg not in values:
            raise ValueError(f"{where!r} uses a constant or a non-tensor value ({arg!r}), which NIR cannot express")
        return values[arg]

    for node in graph.nodes:
        if node.op == "placeholder":
            if values:
                raise ValueError(f"{what} takes more than one input; NIR export needs a single input")
            shape = _per_sample(node)
            values[node] = _Signal((ex.add("input", nir.Input(input_type=np.array(shape))),), shape, False)
        elif node.op == "call_module":
            m, name = gm.get_submodule(node.target), rename(node.target)
            if len(node.args) != 1 or node.kwargs:
                raise ValueError(f"layer {name!r} is called with {len(node.args)} arguments; NIR nodes take one input")
            x, single = signal(node.args[0], name), len(node.users) == 1
            if isinstance(m, SeqToANN):
                values[node] = ex.sequence(m, name, x, single)
            else:
                values[node] = ex.layer(m, name, x, _per_sample(node), single)
        elif node.op in ("call_function", "call_method"):
            owner = rename(_where(node))
            where = owner or f"{what}.forward"

            def name(suffix: str) -> str:
                return f"{owner}.{suffix}" if owner else suffix

            fn = node.target
            if fn is sew_function:
                args = list(node.args) + [node.kwargs.get(k) for k in ("a", "s", "connect")[len(node.args):]]
                values[node] = ex.join(args[2], name("join"), signal(args[0], where), signal(args[1], where))
            elif fn in (operator.add, torch.add, "add") and len(node.args) == 2 and not node.kwargs:
                a, b = signal(node.args[0], where), signal(node.args[1], where)
                if a.shape != b.shape:
                    raise ValueError(f"{where!r} adds shapes {a.shape} and {b.shape}; NIR sums need equal shapes")
                values[node] = _Signal(a.sources + b.sources, a.shape, False)
            elif fn in (torch.flatten, "flatten"):
                args = list(node.args) + [0, -1][len(node.args) - 1:]
                values[node] = _time_flatten(ex, name("flatten"), signal(args[0], where),
                                             node.kwargs.get("start_dim", args[1]), node.kwargs.get("end_dim", args[2]))
            else:
                fname = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
                raise ValueError(
                    f"{where!r} applies {fname} to its signals, which has no NIR form: NIR only sums the edges that "
                    "enter a node (residual ADD), and spikelab exports the SEW joins it knows"
                )
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise ValueError(f"{what} returns {type(out).__name__}; NIR export needs a single output tensor")
            y = signal(out, "output")
            ex.add("output", nir.Output(output_type=np.array(y.shape)), y)
        else:
            raise ValueError(f"{what} reads {node.target!r} directly ({node.op}); NIR export needs layers")
