"""Loss landscapes around trained weights (Li et al. 2018), for comparing minima such as SDT's and TET's (SPEC 3).

The loss is evaluated at ``theta + alpha * d1 (+ beta * d2)`` for random directions ``d`` that are
*filter-normalised*: each filter (slice along the first axis) of each weight tensor is rescaled to the norm of the
same filter in ``theta``, so that directions are comparable across layers and networks of different scale; 1-D
tensors (biases, batch-norm parameters) get zero direction. The model's own parameters are restored afterwards.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from spikelab._checks import check_int

__all__ = ["random_direction", "loss_along", "loss_landscape_1d", "loss_landscape_2d"]

Direction = dict[str, torch.Tensor]


def random_direction(model: nn.Module, *, seed: int = 0, filter_normalize: bool = True) -> Direction:
    """A random Gaussian direction over ``model``'s parameters (by name), filter-normalised by default."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    direction = {}
    for name, p in model.named_parameters():
        d = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
        if p.dim() <= 1:
            d.zero_()
        elif filter_normalize:
            w = p.detach().cpu().reshape(p.shape[0], -1)
            dv = d.reshape(p.shape[0], -1)
            dv.mul_(w.norm(dim=1, keepdim=True) / (dv.norm(dim=1, keepdim=True) + 1e-10))
        direction[name] = d.to(p.device)
    return direction


def _check_direction(model: nn.Module, d: Direction, name: str) -> None:
    params = dict(model.named_parameters())
    if not isinstance(d, dict) or set(d) != set(params):
        raise ValueError(f"{name} must map every parameter name of the model to a tensor (see random_direction)")
    for k, p in params.items():
        if d[k].shape != p.shape:
            raise ValueError(f"{name}[{k!r}] has shape {tuple(d[k].shape)}, the parameter has {tuple(p.shape)}")


@torch.no_grad()
def loss_along(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    offsets: Sequence[tuple[float, Direction]],
) -> float:
    """Mean loss over ``batches`` with parameters ``theta + sum(coef * d for coef, d in offsets)``; restores theta."""
    batches = list(batches)
    if not batches:
        raise ValueError("batches must hold at least one (x, y) batch")
    params = dict(model.named_parameters())
    saved = {k: p.detach().clone() for k, p in params.items()}
    try:
        for k, p in params.items():
            p.copy_(saved[k] + sum(coef * d[k] for coef, d in offsets) if offsets else saved[k])
        total, n = 0.0, 0
        for x, y in batches:
            total += float(loss_fn(model(x), y)) * len(y)
            n += len(y)
        return total / n
    finally:
        for k, p in params.items():
            p.copy_(saved[k])


def _grid(values: Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2 or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be a 1-D sequence of at least 2 finite numbers")
    return arr


def loss_landscape_1d(
    model: nn.Module, loss_fn: Callable, batches: Iterable, alphas: Sequence[float], *,
    direction: Direction | None = None, seed: int = 0,
) -> np.ndarray:
    """Losses ``[len(alphas)]`` at ``theta + alpha * direction`` (a filter-normalised random one by default).

    The model is put in eval mode (batch norm uses its running statistics) and restored to its previous mode.
    """
    a = _grid(alphas, "alphas")
    d = direction if direction is not None else random_direction(model, seed=seed)
    _check_direction(model, d, "direction")
    batches = list(batches)
    was_training = model.training
    model.eval()
    try:
        return np.array([loss_along(model, loss_fn, batches, [(float(al), d)]) for al in a])
    finally:
        model.train(was_training)


def loss_landscape_2d(
    model: nn.Module, loss_fn: Callable, batches: Iterable, alphas: Sequence[float], betas: Sequence[float], *,
    directions: tuple[Direction, Direction] | None = None, seed: int = 0,
) -> np.ndarray:
    """Losses ``Z [len(betas), len(alphas)]`` at ``theta + alpha * d1 + beta * d2`` (rows follow ``betas``, as
    :func:`spikelab.viz.figures.landscape_2d_figure` expects); two independent random directions by default."""
    a, b = _grid(alphas, "alphas"), _grid(betas, "betas")
    if directions is None:
        directions = (random_direction(model, seed=seed), random_direction(model, seed=seed + 1))
    d1, d2 = directions
    _check_direction(model, d1, "directions[0]")
    _check_direction(model, d2, "directions[1]")
    batches = list(batches)
    was_training = model.training
    model.eval()
    try:
        return np.array([[loss_along(model, loss_fn, batches, [(float(al), d1), (float(be), d2)]) for al in a]
                         for be in b])
    finally:
        model.train(was_training)
