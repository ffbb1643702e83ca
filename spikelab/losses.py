"""Losses on per-step outputs ``O`` ``[T, B, C]`` of a non-spiking readout layer (SPEC section 3).

- SDT: ``L = CE(mean_t O[t], y)``.
- TET: ``L = (1 - lam) * mean_t CE(O[t], y) + lam * mean_t MSE(O[t], phi)`` (MSE averaged over all elements).
By Jensen's inequality ``sdt_loss <= tet_loss`` at ``lam = 0``. Prediction is ``argmax(mean_t O[t])``.

Models with auxiliary heads (a dual-stream network's second classifier, SPEC section 5) return their prediction
from ``forward`` as every model does, and hand the other heads' logits to the loss through
:func:`auxiliary_outputs`; :func:`multi_head_loss` applies the same loss to every head and sums.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from spikelab._checks import check_choice, check_positive, check_range, check_real, check_tensor, check_time_first


def _check_outputs(outputs: torch.Tensor) -> None:
    check_tensor(outputs, "outputs")
    if outputs.dim() != 3:
        raise ValueError(f"outputs must be time-first logits [T, B, C], got shape {tuple(outputs.shape)}")
    check_time_first(outputs, "outputs", min_dim=3)


def _check_outputs_targets(outputs: torch.Tensor, targets: torch.Tensor, allow_per_step: bool) -> None:
    _check_outputs(outputs)
    if not outputs.is_floating_point():
        raise TypeError(f"outputs must be a floating-point tensor, got {outputs.dtype}")
    check_tensor(targets, "targets")
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"targets must hold integer class indices, got {targets.dtype}")
    T, B, C = outputs.shape
    if targets.dim() == 2 and allow_per_step:
        if targets.shape != (T, B):
            raise ValueError(
                f"per-step targets must be [T, B] = [{T}, {B}] to match outputs, got {tuple(targets.shape)}"
            )
    elif targets.dim() != 1 or targets.shape[0] != B:
        expected = "[B] (or [T, B])" if allow_per_step else "[B]"
        raise ValueError(f"targets must be {expected} with B = {B} to match outputs, got {tuple(targets.shape)}")
    if targets.numel() and (targets.min() < 0 or targets.max() >= C):
        raise ValueError(f"targets must be class indices in [0, {C - 1}], got range "
                         f"[{int(targets.min())}, {int(targets.max())}]")


def sdt_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Standard direct training loss: cross-entropy of the time-averaged logits, ``CE(mean_t O[t], y)``.

    Args:
        outputs: logits ``[T, B, C]``.
        targets: class indices ``[B]``.
    """
    _check_outputs_targets(outputs, targets, allow_per_step=False)
    return F.cross_entropy(outputs.mean(0), targets.long())


def tet_loss(outputs: torch.Tensor, targets: torch.Tensor, lam: float = 0.05, phi: float = 1.0) -> torch.Tensor:
    """Temporal efficient training loss (Deng et al. 2022).

    ``(1 - lam) * mean_t CE(O[t], y) + lam * mean_t MSE(O[t], phi)``.

    Args:
        outputs: logits ``[T, B, C]``.
        targets: class indices ``[B]`` (or ``[T, B]``, one label per step).
        lam: weight of the MSE regulariser in [0, 1] (paper: 0.05 on CIFAR, 0.001 on ImageNet and DVS-CIFAR10).
        phi: the regulariser's target value for every logit (paper: ``v_th = 1``).
    """
    _check_outputs_targets(outputs, targets, allow_per_step=True)
    lam = check_range(lam, "lam", 0.0, 1.0)
    phi = check_real(phi, "phi")
    T, B, C = outputs.shape
    per_step_targets = targets if targets.dim() == 2 else targets.unsqueeze(0).expand(T, B)
    # every step's CE is a mean over the same B samples, so one CE over T*B rows equals mean_t CE(O[t], y)
    ce = F.cross_entropy(outputs.reshape(T * B, C), per_step_targets.reshape(T * B).long())
    if lam == 0.0:
        return ce
    mse = ((outputs - phi) ** 2).mean()
    return (1 - lam) * ce + lam * mse


def rate_predict(outputs: torch.Tensor) -> torch.Tensor:
    """Predicted class per sample, ``argmax(mean_t O[t])``: ``[T, B, C]`` -> ``[B]``."""
    _check_outputs(outputs)
    return outputs.mean(0).argmax(-1)


def rate_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose :func:`rate_predict` equals ``targets`` ``[B]``."""
    _check_outputs_targets(outputs, targets, allow_per_step=False)
    return (rate_predict(outputs) == targets).float().mean().item()


def per_step_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """Accuracy of each step's own output, ``argmax O[t] == y``, for ``t = 0 .. T-1``: ``[T, B, C]`` -> ``[T]``.

    TET trains every ``O[t]`` to classify on its own (SPEC section 3); SDT trains only their mean, so a single step
    of an SDT network may be a poor classifier even when the mean is a good one.
    """
    _check_outputs_targets(outputs, targets, allow_per_step=False)
    return (outputs.argmax(-1) == targets.unsqueeze(0)).float().mean(1).tolist()


#: the attribute through which a model with auxiliary heads finds where to put their logits (None: nowhere)
AUX_SINK = "aux_sink"


@contextmanager
def auxiliary_outputs(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the logits of ``model``'s auxiliary heads during the forward passes inside the ``with`` block.

    ``forward`` returns one prediction ``[T, B, C]`` for every model. A model with further heads trained by the loss
    (a dual-stream network's spike head, SPEC section 5) has an attribute ``aux_sink`` (None by default); inside the
    block it is a list, and each forward pass appends those heads' logits ``[T, B, C]`` to it. For a model without
    auxiliary heads the list stays empty, so a training loop can use this for every model::

        with auxiliary_outputs(model) as aux:
            out = model(x)                               # [T, B, C], the prediction
            loss = multi_head_loss(loss_fn, out, aux, y)  # loss_fn(out, y) + sum(loss_fn(a, y) for a in aux)

    Nothing is kept once the block ends (the sink is reset to None). Works on the model itself, not through a
    wrapper such as ``DistributedDataParallel`` (pass the wrapped module).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    sink: list[torch.Tensor] = []
    holders = [m for m in model.modules() if hasattr(m, AUX_SINK)]
    for m in holders:
        setattr(m, AUX_SINK, sink)
    try:
        yield sink
    finally:
        for m in holders:
            setattr(m, AUX_SINK, None)


def multi_head_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    outputs: torch.Tensor,
    aux: Sequence[torch.Tensor],
    targets: torch.Tensor,
) -> torch.Tensor:
    """``loss_fn(outputs, targets) + sum(loss_fn(a, targets) for a in aux)``: the same loss on every head, summed.

    With a dual-stream network's two heads and SDT this is SPEC section 5's ``CE(head(s), y) + CE(head(acc), y)``;
    with TET each head gets its own per-step TET loss. ``aux`` comes from :func:`auxiliary_outputs` (empty for a
    model with one head, which leaves ``loss_fn(outputs, targets)`` unchanged).
    """
    loss = loss_fn(outputs, targets)
    for a in aux:
        loss = loss + loss_fn(a, targets)
    return loss


LOSS_NAMES = ("sdt", "tet")

#: TET's lam per setting in the paper (SPEC section 3): 0.05 on CIFAR, 0.001 on ImageNet and on DVS-CIFAR10.
TET_PRESETS: dict[str, float] = {"cifar": 0.05, "imagenet": 0.001, "dvs": 0.001}


def tet_preset(name: str, *, v_th: float = 1.0) -> dict[str, object]:
    """The TET paper's settings for ``name`` (``"cifar"``, ``"imagenet"`` or ``"dvs"``) as training settings.

    Returns ``{"loss": "tet", "lam": TET_PRESETS[name], "phi": v_th}``: the regulariser pulls every logit toward
    the neurons' threshold (``phi = v_th``; SPEC section 3). Pass them to ``fit`` or ``TrainConfig``:
    ``fit(model, data, **tet_preset("cifar", v_th=model.v_th))``. ``spikelab train --tet-preset cifar`` and the
    training panel's preset control do the same.

    Raises:
        ValueError: an unknown preset name (the message lists them) or ``v_th`` not a finite number > 0.
    """
    check_choice(name, "preset", tuple(TET_PRESETS))
    v_th = check_positive(v_th, "v_th")
    return {"loss": "tet", "lam": TET_PRESETS[name], "phi": v_th}


def get_loss(name: str, *, lam: float = 0.05, phi: float = 1.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss called ``name`` (``"sdt"`` or ``"tet"``, with ``lam`` and ``phi`` for TET) as ``f(outputs, y)``."""
    check_choice(name, "loss", LOSS_NAMES)
    if name == "sdt":
        return sdt_loss
    lam = check_range(lam, "lam", 0.0, 1.0)
    phi = check_real(phi, "phi")

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return tet_loss(outputs, targets, lam=lam, phi=phi)

    loss.__name__ = f"tet_loss(lam={lam:g}, phi={phi:g})"
    return loss
