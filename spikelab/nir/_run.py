"""Export the network of a run folder (``spikelab train`` or a training panel) to NIR."""
from __future__ import annotations

import os
from typing import Any

import nir
import torch

#: Models built for a fixed input size (``input_size=(H, W)``), as ``spikelab train`` builds them.
_SIZED_MODELS = ("mlp", "conv-small", "vggsnn")
_NEEDED = ("model", "T", "num_classes", "input_shape", "is_event")


def model_from_run(run: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model of a run folder (or its ``checkpoint.pt``) and the run's settings.

    Raises ``ValueError`` when the checkpoint lacks the settings needed to rebuild the model.
    """
    from spikelab import models, training

    ckpt = training.load_checkpoint(run)
    cfg = ckpt.get("run_config") if isinstance(ckpt.get("run_config"), dict) else {}
    missing = [k for k in _NEEDED if k not in cfg]
    if missing:
        raise ValueError(f"{str(run)!r}: the checkpoint lacks the run settings {missing} needed to rebuild the "
                         "model (runs written by 'spikelab train' have them)")
    shape = list(cfg["input_shape"])
    kwargs: dict[str, Any] = {"input_size": tuple(shape[-2:])} if cfg["model"] in _SIZED_MODELS else {}
    in_channels = shape[1] if cfg["is_event"] else shape[0]
    model = models.build(cfg["model"], num_classes=cfg["num_classes"], in_channels=in_channels, T=cfg["T"], **kwargs)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, dict(cfg)


def export_run(
    run: str | os.PathLike, path: str | os.PathLike | None, *, dt: float | None = None,
    discretisation: str = "euler", force_hard_reset: bool = False,
) -> nir.NIRGraph:
    """Export the trained network of ``run`` (a run folder or its checkpoint) with :func:`spikelab.nir.export`.

    The input size comes from the run's settings; ``dt`` defaults to :data:`spikelab.nir.DEFAULT_DT`.
    """
    from spikelab.nir import DEFAULT_DT, export

    model, cfg = model_from_run(run)
    shape = list(cfg["input_shape"])
    sample = torch.zeros(1, 1, *(shape[1:] if cfg["is_event"] else shape))
    return export(model, path, dt=DEFAULT_DT if dt is None else dt, discretisation=discretisation,
                  sample_input=sample, force_hard_reset=force_hard_reset)
