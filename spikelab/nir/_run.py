"""Export the network of a run folder (``spikelab train`` or a training panel) to NIR."""
from __future__ import annotations

import os
from typing import Any

import nir
import torch

def model_from_run(run: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model of a run folder (or its ``checkpoint.pt``) and the run's settings, in eval mode.

    Raises ``ValueError`` when the checkpoint lacks the settings needed to rebuild the model, or when its weights do
    not match them (:func:`spikelab.recipe.build_model`).
    """
    from spikelab import recipe, training

    ckpt = training.load_checkpoint(run)
    cfg = ckpt.get("run_config") if isinstance(ckpt.get("run_config"), dict) else {}
    model = recipe.build_model(cfg, ckpt["model"], source=repr(str(run)))
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
