"""Sharpness of a minimum as one number: the top eigenvalue of the loss Hessian, by power iteration on
Hessian-vector products (Pearlmutter's trick: ``Hv = d(g . v)/dtheta`` with ``g = dL/dtheta``), as in PyHessian.

A flat minimum has a small top eigenvalue; TET's flatness claim (Deng et al. 2022; SPEC section 3) is that TET
reaches flatter minima than SDT. The loss is taken on one fixed batch with batch norm in eval mode (running
statistics), so it is a deterministic function of the parameters.

For a spiking network the gradient is the surrogate gradient, and the "Hessian" is its Jacobian with respect to the
parameters (the surrogate's own derivative enters it); it need not be exactly symmetric. Each iteration computes
``H^T v`` (a vector-Jacobian product of the gradient; ``H^T`` has the eigenvalues of ``H``, and equals it for a
true Hessian). Power iteration returns the eigenvalue of largest magnitude (its sign included) through the
Rayleigh quotient ``v . Hv`` of the iterate.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from spikelab._checks import check_int, check_positive, check_tensor
from spikelab.losses import auxiliary_outputs, multi_head_loss

__all__ = ["Sharpness", "top_hessian_eigenvalue"]


@dataclass(frozen=True)
class Sharpness:
    """The result of :func:`top_hessian_eigenvalue`.

    ``eigenvalue``: the last Rayleigh quotient ``v . Hv`` (``|v| = 1``); ``history``: the quotient after each
    iteration (its convergence); ``converged``: whether two successive quotients agreed within ``tol`` (relative);
    ``iterations``: Hessian-vector products computed.
    """

    eigenvalue: float
    history: tuple[float, ...]
    converged: bool
    iterations: int


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))  # type: ignore[return-value]


def top_hessian_eigenvalue(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    iters: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
) -> Sharpness:
    """Top eigenvalue of the Hessian of ``loss_fn(model(x), y)`` over the trainable parameters, at one batch.

    The model runs in eval mode (batch norm on running statistics; the mode is restored) and its auxiliary heads,
    if any, add their loss as in training (:func:`spikelab.losses.multi_head_loss`). The forward and first
    backward pass run once; each iteration is one Hessian-vector product (a second backward pass through the kept
    graph). Parameters and ``.grad`` are left untouched.

    Args:
        model: the network (all parameters with ``requires_grad`` count).
        loss_fn: ``f(outputs, targets) -> scalar``, e.g. :func:`spikelab.losses.sdt_loss`.
        batch: ``(x, y)``: a model input (static ``[B, ...]`` or ``[T, B, ...]``) and its targets.
        iters: at most this many power iterations.
        tol: stop when ``|lambda_k - lambda_{k-1}| <= tol * |lambda_k|``.
        seed: seeds the random start vector.

    Raises:
        ValueError: the model has no trainable parameters; the loss is not a scalar of them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function f(outputs, targets), got {type(loss_fn).__name__}")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("batch must be a pair (x, y)")
    x, y = check_tensor(batch[0], "batch[0]"), check_tensor(batch[1], "batch[1]")
    iters = check_int(iters, "iters", minimum=1)
    tol = check_positive(tol, "tol")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model ({type(model).__name__}) has no trainable parameters (none with "
                         "requires_grad=True): the Hessian is over the trainable parameters")
    gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    was_training = model.training
    model.eval()
    try:
        with auxiliary_outputs(model) as aux:
            loss = multi_head_loss(loss_fn, model(x), aux, y)
        if loss.dim() != 0 or not loss.requires_grad:
            raise ValueError("loss_fn must return a scalar that depends on the model's parameters")
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        pairs = [(p, g) for p, g in zip(params, grads) if g is not None and g.requires_grad]
        if not pairs:
            raise ValueError("the loss has no second derivative with respect to the parameters")
        params, grads = [p for p, _ in pairs], [g for _, g in pairs]
        v = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p) for p in params]
        norm = torch.sqrt(_dot(v, v))
        v = [t / norm for t in v]
        history: list[float] = []
        converged = False
        for _ in range(iters):
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True, allow_unused=True)
            hv = [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(params, hv)]
            eig = float(_dot(v, hv))
            history.append(eig)
            norm = torch.sqrt(_dot(hv, hv))
            if not torch.isfinite(norm):
                raise ValueError("the Hessian-vector product is not finite (a NaN or inf in the loss or model)")
            if norm == 0:  # v is in the null space: the eigenvalue along it is 0
                break
            v = [h / norm for h in hv]
            if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * abs(history[-1]):
                converged = True
                break
    finally:
        model.train(was_training)
    return Sharpness(eigenvalue=history[-1], history=tuple(history), converged=converged,
                     iterations=len(history))
