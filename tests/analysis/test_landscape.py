"""Loss landscapes against closed forms on a linear model, and on a real spiking network."""
import numpy as np
import pytest
import torch
from torch import nn

from spikelab import models
from spikelab.analysis import loss_along, loss_landscape_1d, loss_landscape_2d, random_direction
from spikelab.losses import sdt_loss


def linear_setup():
    torch.manual_seed(0)
    net = nn.Linear(5, 3)
    x = torch.randn(16, 5)
    y = torch.randn(16, 3)
    mse = lambda out, target: ((out - target) ** 2).mean()  # noqa: E731
    return net, [(x[:8], y[:8]), (x[8:], y[8:])], mse, x, y


def test_filter_normalised_direction():
    net, *_ = linear_setup()
    d = random_direction(net, seed=3)
    torch.testing.assert_close(d["weight"].norm(dim=1), net.weight.detach().norm(dim=1))
    assert torch.equal(d["bias"], torch.zeros(3))  # 1-D tensors do not move
    assert torch.equal(random_direction(net, seed=3)["weight"], d["weight"])
    assert not torch.equal(random_direction(net, seed=4)["weight"], d["weight"])


def test_1d_matches_the_closed_form_and_restores_the_model():
    net, batches, mse, x, y = linear_setup()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    d = random_direction(net, seed=1)
    alphas = np.linspace(-1, 1, 7)
    got = loss_landscape_1d(net, mse, batches, alphas, direction=d)
    W, b, D = net.weight.detach(), net.bias.detach(), d["weight"]
    want = [(((x @ (W + a * D).T + b) - y) ** 2).mean().item() for a in alphas]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # a quadratic in alpha: constant second differences
    np.testing.assert_allclose(np.diff(got, 2), np.diff(got, 2)[0], rtol=1e-3)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training


def test_2d_grid_orientation_and_centre():
    net, batches, mse, x, y = linear_setup()
    d1, d2 = random_direction(net, seed=1), random_direction(net, seed=2)
    alphas, betas = [-0.5, 0.0, 0.5, 1.0], [-1.0, 0.0, 1.0]
    Z = loss_landscape_2d(net, mse, batches, alphas, betas, directions=(d1, d2))
    assert Z.shape == (3, 4)
    assert Z[1, 1] == pytest.approx(mse(net(x), y).item(), rel=1e-6)
    assert Z[2, 3] == pytest.approx(loss_along(net, mse, batches, [(1.0, d1), (1.0, d2)]), rel=1e-9)


def test_spiking_network_landscape_is_finite_and_centred_on_the_trained_loss():
    torch.manual_seed(0)
    net = models.build("conv-small", num_classes=10, in_channels=1, T=2)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    net.eval()
    with torch.no_grad():
        centre = sdt_loss(net(x), y).item()
    net.train()
    losses = loss_landscape_1d(net, sdt_loss, [(x, y)], [-0.5, 0.0, 0.5])
    assert np.isfinite(losses).all()
    assert losses[1] == pytest.approx(centre, rel=1e-6)


def test_bad_input():
    net, batches, mse, *_ = linear_setup()
    with pytest.raises(ValueError, match="alphas"):
        loss_landscape_1d(net, mse, batches, [0.0])
    with pytest.raises(ValueError, match="direction"):
        loss_landscape_1d(net, mse, batches, [0.0, 1.0], direction={"weight": torch.zeros(3, 5)})
    with pytest.raises(ValueError, match="batches"):
        loss_along(net, mse, [], [])
    with pytest.raises(TypeError, match="model"):
        random_direction("net")
