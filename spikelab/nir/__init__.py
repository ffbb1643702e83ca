"""Export trained spikelab networks to NIR, the Neuromorphic Intermediate Representation (Pedersen et al.,
Nat. Commun. 2024; PyPI ``nir``), and load NIR graphs as spikelab modules. What travels and what does not is in
``docs/NIR.md``; the neuron mapping is in :mod:`spikelab.nir._params` (SPEC section 1).

- :func:`export` traces a model into a ``nir.NIRGraph`` (and writes the HDF5 file, atomically, when given a path):
  conv, linear, flatten, average, sum and max pooling (max pooling of spikes as an OR), IF, LIF and trained PLIF
  (as the LIF of its learned decay), tdBN folded into the conv/linear before it (eval mode), residual ADD and the
  SEW joins on spikes, the non-spiking readout. Anything else is refused with the layer's name and the reason.
- :func:`load` builds a :class:`NIRNetwork` that runs on ``[T, B, ...]`` from a NIR file or graph.

Conventions (recorded in every exported file's metadata and read back by :func:`load`):

- one graph step per time step ``dt``; a model trained on static input expects it at every step (direct encoding);
- the discretisation: ``"euler"`` (default, as snnTorch: ``tau = dt/(1 - decay)``, ``R = k/(1 - decay)``) or
  ``"exact"`` (``tau = -dt/ln(decay)``, same ``R``), with ``k`` the neuron's input scale (1; PLIF's published
  form scales by ``1/tau = 1 - decay``, so ``R = 1``); ``dt`` defaults to 1e-4, the step snnTorch's importer assumes;
- NIR neurons fire when ``v > v_threshold``, spikelab's when ``v >= v_th``: the same threshold is written, so the
  two differ only on steps where the membrane lands exactly on the threshold;
- NIR has only a hard reset and starts every membrane at 0: a soft or no reset is refused (``force_hard_reset=True``
  exports it as a hard reset, with a warning), a non-zero ``v_init`` is refused;
- surrogate gradients and ``detach_reset`` are training-only: dropped (noted in each neuron node's metadata);
  a loaded network uses the atan surrogate.
"""
from __future__ import annotations

import os

import nir
import torch
from torch import nn

from spikelab._checks import check_choice, check_tensor, check_time_first
from spikelab.models._blocks import SpikingModel
from spikelab.nir._export import _Exporter, neuron_charge
from spikelab.nir._io import read_graph, write_graph
from spikelab.nir._load import NODE_LOADERS, NIRNetwork, build_network
from spikelab.nir._modules import AffineInputLIF, Heaviside, Scale, SumPool2d
from spikelab.nir._params import DISCRETISATIONS, check_dt
from spikelab.nir._trace import _SequencePath, walk

__all__ = [
    "export", "load", "export_run", "NIRNetwork", "AffineInputLIF", "Heaviside", "Scale", "SumPool2d",
    "DEFAULT_DT", "DISCRETISATIONS", "NODE_LOADERS", "neuron_charge", "read_graph", "write_graph",
]

#: The default time step: snnTorch exports with it and its importer assumes it.
DEFAULT_DT = 1e-4


def _sample(model: nn.Module, sample_input: torch.Tensor | None) -> torch.Tensor:
    if sample_input is None:
        shape = model.in_shape if isinstance(model, SpikingModel) else getattr(model, "input_shape", None)
        if not isinstance(model, (SpikingModel, NIRNetwork)) or shape is None or None in shape:
            raise ValueError(f"sample_input is needed: {type(model).__name__} does not fix its input size; pass one "
                             "input [T, B, ...] (for a spikelab model also a static batch [B, ...]); only its shape "
                             "is used")
        x = torch.zeros(1, 1, *shape)
    else:
        check_tensor(sample_input, "sample_input")
        if not sample_input.is_floating_point():
            raise TypeError(f"sample_input must be a floating-point tensor, got {sample_input.dtype}")
        x = sample_input
        if isinstance(model, SpikingModel) and x.dim() == len(model.in_shape) + 1:
            x = x.unsqueeze(0)  # a static batch: one step of its direct encoding
        check_time_first(x, "sample_input", min_dim=3)
        if x.shape[1] == 0:
            raise ValueError(f"sample_input must have a batch of at least 1, got shape {tuple(x.shape)}")
        x = x[:1, :1]
    p = next(model.parameters(), None)
    return x.detach().to(device=p.device, dtype=p.dtype) if p is not None else x.detach()


def export(
    model: nn.Module,
    path: str | os.PathLike | None = None,
    *,
    dt: float = DEFAULT_DT,
    discretisation: str = "euler",
    sample_input: torch.Tensor | None = None,
    force_hard_reset: bool = False,
) -> nir.NIRGraph:
    """Export ``model`` as a NIR graph (one evaluation per time step), and write it to ``path`` if given.

    The model is exported as it runs in eval mode (batch norm from its running statistics, folded into the conv or
    linear layer before it); its own train/eval mode is left as it was. Node names are the model's layer names
    (``stem.conv``, ``body.sn1``, ``head.fc``); graph metadata records ``dt``, ``discretisation`` and notes.

    Args:
        model: a spikelab model (``models.build(...)``), a network from :func:`load`, or any module whose forward
            only calls spikelab layers (:class:`~spikelab.layers.SeqToANN`, tdBN, neurons), adds their outputs
            and joins them with :func:`~spikelab.models.sew_function`.
        path: where to write the HDF5 file (atomically), or ``None`` to only return the graph.
        dt: the time step, in the unit of NIR's ``tau`` (> 0; default 1e-4 as snnTorch).
        discretisation: ``"euler"`` (default; ``tau = dt/(1 - decay)``) or ``"exact"`` (``tau = -dt/ln(decay)``).
        sample_input: an input ``[T, B, ...]`` (or a static batch ``[B, ...]`` for a spikelab model), used only for
            its shape; needed when the model does not fix its input size (the ResNets).
        force_hard_reset: export soft- and no-reset neurons with NIR's hard reset (warns: the dynamics change).

    Returns:
        the ``nir.NIRGraph`` (type-checked by ``nir``).

    Raises:
        ValueError: naming the layer, for what NIR cannot express (see ``docs/NIR.md``), e.g. a soft reset, batch
            norm that follows no conv/linear, max pooling of non-spikes, an unknown join.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    dt = check_dt(dt)
    check_choice(discretisation, "discretisation", DISCRETISATIONS)
    if not isinstance(force_hard_reset, bool):
        raise TypeError(f"force_hard_reset must be a bool, got {type(force_hard_reset).__name__}")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path or None, got {type(path).__name__}")
    if isinstance(model, SpikingModel) and not model.spiking:
        raise ValueError("model is an ANN twin (spiking=False); NIR export is for spiking networks")
    x = _sample(model, sample_input)
    if isinstance(model, SpikingModel):
        root, rename = _SequencePath(model), (lambda q: q)
    elif isinstance(model, NIRNetwork):
        root = model

        def rename(q: str) -> str:
            head, _, key = q.partition(".")
            return model.node_names.get(key, q) if head == "layers" else q
    else:
        root, rename = model, (lambda q: q)
    ex = _Exporter(dt=dt, discretisation=discretisation, force_hard_reset=force_hard_reset)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            walk(root, x, ex, rename, type(model).__name__)
    finally:
        for m, training in modes:
            m.training = training
    import spikelab

    metadata = {
        "producer": f"spikelab {spikelab.__version__}",
        "dt": dt,
        "discretisation": discretisation,
        "time": "one graph step per time step dt; inputs at every step (a static input is repeated: direct encoding)",
        "threshold": "spikelab fires at v >= v_threshold, NIR at v > v_threshold; the threshold is written as is",
        "dropped": "surrogate gradients and detach_reset (training only); batch norm folded (eval mode)",
    }
    if isinstance(model, SpikingModel):
        metadata["T"] = model.T  # the steps a static input is repeated for in spikelab
    if ex.changed_resets:
        metadata["reset_changed"] = "soft or no reset exported as hard reset: " + ", ".join(ex.changed_resets)
    graph = nir.NIRGraph(nodes=ex.nodes, edges=ex.edges, metadata=metadata)
    if path is not None:
        write_graph(path, graph)
    return graph


def _convention(given: object, stored: object, name: str, default: object) -> object:
    if stored is not None and not isinstance(stored, str):
        stored = float(stored)
    if given is None:
        return default if stored is None else stored
    if stored is not None and given != stored:
        raise ValueError(f"{name}={given!r} contradicts the {name} recorded in the graph ({stored!r})")
    return given


def load(
    source: str | os.PathLike | nir.NIRGraph, *, dt: float | None = None, discretisation: str | None = None
) -> NIRNetwork:
    """Load a NIR file (or a ``nir.NIRGraph``) as a spikelab :class:`NIRNetwork` running on ``[T, B, ...]``.

    ``dt`` and ``discretisation`` are read from the graph's metadata (spikelab's files record them); for other
    files they default to 1e-4 and ``"euler"`` (snnTorch's convention). Giving one that contradicts the recorded
    value is an error. NIR ``LIF``/``IF`` nodes become spikelab neurons with a hard reset (``AffineInputLIF`` where
    ``R`` or ``v_leak`` do not reduce to spikelab's plain charge); see ``NODE_LOADERS`` for the node types read.

    Raises:
        FileNotFoundError: a missing file. ValueError: a file that is not NIR; an unsupported node (named, with its
        type); per-neuron time constants or thresholds that differ within a layer; a recurrent graph.
    """
    graph = read_graph(source)
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is not None:
        dt = check_dt(dt)
    if discretisation is not None:
        check_choice(discretisation, "discretisation", DISCRETISATIONS)
    dt = check_dt(_convention(dt, meta.get("dt"), "dt", DEFAULT_DT), "the graph's dt")
    disc = _convention(discretisation, meta.get("discretisation"), "discretisation", "euler")
    check_choice(disc, "the graph's discretisation", DISCRETISATIONS)
    return build_network(graph, dt=dt, discretisation=disc)


from spikelab.nir._run import export_run  # noqa: E402  (uses export)
