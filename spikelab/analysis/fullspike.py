"""Full-spike networks against their relatives (lab 10; SPEC section 5): the same small residual layout as a
full-spike network (FSNN), a dual-stream network (DSNN, the FSNN with the auxiliary accumulation pathway), a
SEW-ResNet with ADD joins, and the ANN twin, and their synaptic operations and energy per layer.

The DSNN and the FSNN are one network (``dsnn-small``) read with its pathway on and off; the SEW-ResNet and the ANN
share its layout and neuron (AAP's IF neuron), as in the ``aap`` reproduction (:mod:`spikelab.reproduce.aap`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from spikelab._checks import check_choice, check_int

__all__ = ["NETWORKS", "full_spike_networks", "network_operations"]

#: the four networks compared, in order
NETWORKS = ("FSNN", "DSNN", "SEW-ResNet (ADD)", "ANN")


def full_spike_networks(
    *, num_classes: int, in_channels: int, T: int = 4, widths: Sequence[int] = (16, 32, 64),
    stages: Sequence[int] = (1, 1, 1), connect: str = "IAND", dsnn: nn.Module | None = None, seed: int = 0,
) -> dict[str, tuple[nn.Module, bool | None]]:
    """``{name: (model, pathway)}`` for :data:`NETWORKS`: the FSNN and the DSNN are the same ``dsnn-small``
    (``dsnn``, e.g. a trained one, or a new one with ``connect``), read with ``pathway`` False and True; the
    SEW-ResNet (ADD joins) and the ANN twin (``spiking=False``, ReLU) are new, with the same layout, AAP's neuron
    and seed. ``pathway`` is None for the last two."""
    from spikelab import models
    from spikelab.models import AAP_NEURON, DSNN_CONNECTS

    check_choice(connect, "connect", DSNN_CONNECTS)
    check_int(T, "T", minimum=1)
    common = dict(num_classes=num_classes, in_channels=in_channels, T=T, widths=tuple(widths), stages=tuple(stages))
    if dsnn is None:
        torch.manual_seed(seed)
        dsnn = models.build("dsnn-small", connect=connect, **common)
    elif not hasattr(dsnn, "pathway"):
        raise TypeError(f"dsnn must be a dual-stream network (models.build('dsnn-small', ...)), got "
                        f"{type(dsnn).__name__}")
    torch.manual_seed(seed)
    sew = models.build("sew-resnet18", stem="cifar", connect="ADD", neuron=AAP_NEURON, **common)
    torch.manual_seed(seed)
    ann = models.build("spiking-resnet18", stem="cifar", spiking=False, **common)
    return {"FSNN": (dsnn, False), "DSNN": (dsnn, True), "SEW-ResNet (ADD)": (sew, None), "ANN": (ann, None)}


@torch.no_grad()
def network_operations(networks: dict[str, tuple[nn.Module, bool | None]], x: torch.Tensor
                       ) -> dict[str, list[dict[str, Any]]]:
    """Per-layer synaptic operations and energy per sample (:func:`spikelab.metrics.ops_table`) of each network
    of :func:`full_spike_networks` on ``x`` (``[B, C, H, W]``), in evaluation mode; each dual-stream network is
    left with the pathway it had."""
    from spikelab.metrics import ops_table

    out = {}
    for name, (model, pathway) in networks.items():
        before = getattr(model, "pathway", None)
        was_training = model.training
        model.eval()
        try:
            if pathway is not None:
                model.pathway = pathway
            out[name] = ops_table(model, x)
        finally:
            if before is not None:
                model.pathway = before
            model.train(was_training)
    return out
