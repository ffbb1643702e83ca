"""Sharpness (top Hessian eigenvalue by power iteration) against closed-form Hessians; its guarantees on a
spiking network with batch norm; the analysis modules' errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikelab import models
from spikelab.analysis import loss_landscape_2d, top_hessian_eigenvalue
from spikelab.losses import sdt_loss


def mse(out, target):
    return ((out - target) ** 2).mean()


def test_linear_regression_matches_the_closed_form_hessian():
    """MSE of y = Xw + b over N samples: H = (2 / N) [X 1]^T [X 1], whatever the weights."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.5, 0.2], dtype=torch.float64)
    t = torch.randn(40, 1, generator=g, dtype=torch.float64)
    net = nn.Linear(4, 1).double()
    before = [p.detach().clone() for p in net.parameters()]
    net.train()
    res = top_hessian_eigenvalue(net, mse, (x, t), iters=500, tol=1e-10)
    a = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], 1).numpy()
    eigs = np.linalg.eigvalsh(2.0 / 40 * a.T @ a)
    assert res.converged and res.iterations < 500
    assert res.eigenvalue == pytest.approx(eigs[-1], rel=1e-8)
    # power iteration converges geometrically at rate (lambda2 / lambda1)^2 toward the top eigenvalue from below
    err = np.abs(np.array(res.history) - eigs[-1])
    assert err[-1] < err[0] and all(h <= eigs[-1] * (1 + 1e-12) for h in res.history)
    assert all(torch.equal(b, p) for b, p in zip(before, net.parameters())) and net.weight.grad is None
    assert net.training  # mode restored


def test_quadratic_with_known_spectrum_and_negative_curvature():
    """loss = 0.5 w^T A w + 0 * sum(out): the Hessian is A; the largest |eigenvalue| wins, with its sign."""

    class Quadratic(nn.Module):
        def __init__(self, a: torch.Tensor) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(a.shape[0], dtype=torch.float64))
            self.register_buffer("a", a)

        def forward(self, x):
            return 0.5 * self.w @ self.a @ self.w + 0.0 * x.sum()

    q = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64))[0]
    for spectrum, top in (([4.0, 1.0, 0.5, -0.2, 0.1], 4.0), ([1.0, 0.3, -6.0, 0.2, 2.0], -6.0)):
        a = q @ torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ q.T
        res = top_hessian_eigenvalue(Quadratic(a), lambda out, y: out, (torch.zeros(1), torch.zeros(1)),
                                     iters=1000, tol=1e-12)
        assert res.eigenvalue == pytest.approx(top, rel=1e-6)


def test_spiking_network_uses_eval_mode_and_is_reproducible():
    torch.manual_seed(0)
    net = models.build("conv-small", num_classes=4, in_channels=1, T=2, channels=(4, 4))
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 4, (16,))
    net.train()
    with torch.no_grad():  # give batch norm running statistics that differ from one batch's
        for _ in range(3):
            net(torch.rand(16, 1, 8, 8) * 2)
    stats = [b.clone() for b in net.buffers()]
    r1 = top_hessian_eigenvalue(net, sdt_loss, (x, y), iters=8, seed=1)
    r2 = top_hessian_eigenvalue(net, sdt_loss, (x, y), iters=8, seed=1)
    assert r1 == r2 and np.isfinite(r1.eigenvalue) and r1.eigenvalue != 0
    assert all(torch.equal(a, b) for a, b in zip(stats, net.buffers()))  # eval mode: running stats untouched
    assert net.training
    # in eval mode the loss is one deterministic function: the same as computing the HVP by hand
    net.eval()
    params = [p for p in net.parameters()]
    grads = torch.autograd.grad(sdt_loss(net(x), y), params, create_graph=True)
    gen = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64).float() for p in params]
    n = torch.sqrt(sum((t * t).sum() for t in v))
    v = [t / n for t in v]
    hv = torch.autograd.grad(grads, params, grad_outputs=v)
    assert r1.history[0] == pytest.approx(float(sum((a * b).sum() for a, b in zip(v, hv))), rel=1e-5)


def test_errors_name_the_problem():
    frozen = nn.Linear(3, 1)
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        top_hessian_eigenvalue(frozen, mse, (torch.rand(2, 3), torch.rand(2, 1)))
    with pytest.raises(ValueError, match="scalar"):
        top_hessian_eigenvalue(nn.Linear(3, 2), lambda o, t: o, (torch.rand(2, 3), torch.rand(2, 2)))
    with pytest.raises(TypeError, match="batch must be a pair"):
        top_hessian_eigenvalue(nn.Linear(3, 1), mse, torch.rand(2, 3))
    with pytest.raises(ValueError, match="iters must be >= 1"):
        top_hessian_eigenvalue(nn.Linear(3, 1), mse, (torch.rand(2, 3), torch.rand(2, 1)), iters=0)
    net = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="betas must be a 1-D sequence of at least 2 finite numbers"):
        loss_landscape_2d(net, mse, [(torch.rand(2, 3), torch.rand(2, 1))], [0.0, 1.0], [0.5])
    with pytest.raises(ValueError, match="alphas must be a 1-D sequence of at least 2"):
        loss_landscape_2d(net, mse, [(torch.rand(2, 3), torch.rand(2, 1))], [], [0.0, 0.5])
