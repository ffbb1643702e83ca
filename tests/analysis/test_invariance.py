"""rescale_before_norm gives the same function with rescaled weights (oracle: the original network's outputs), and
the landscape along a filter-normalised direction is the same for both while a raw one is stretched by the scale
(oracle: the original's landscape at alpha / c)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikelab import models
from spikelab.analysis import loss_landscape_1d, random_direction
from spikelab.analysis.invariance import rescale_before_norm
from spikelab.losses import sdt_loss


@pytest.fixture
def net():
    torch.manual_seed(0)
    net = models.build("conv-small", num_classes=10, in_channels=1, T=3, input_size=(8, 8), channels=(4, 8))
    net.train()
    with torch.no_grad():
        net(torch.rand(32, 1, 8, 8))  # non-trivial running statistics
    return net.eval()


@pytest.mark.parametrize("c", [0.25, 2.0, 4.0])
def test_rescaled_copy_computes_the_same_function(net, c):
    x = torch.rand(16, 1, 8, 8)
    twin = rescale_before_norm(net, c)
    convs = [n for n, _ in net.named_parameters() if n.endswith("weight") and _.dim() == 4]
    p, q = dict(net.named_parameters()), dict(twin.named_parameters())
    for n in convs:  # the convs feeding batch norm are rescaled, the original is untouched
        assert torch.allclose(q[n], c * p[n])
    with torch.no_grad():
        assert torch.allclose(twin(x), net(x), atol=1e-4)


def test_landscapes_filter_normalised_coincide_raw_stretch(net):
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    c = 2.0
    twin = rescale_before_norm(net, c)
    alphas = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    curve = lambda m, norm, a: loss_landscape_1d(m, sdt_loss, [(x, y)], a,  # noqa: E731
                                                 direction=random_direction(m, seed=3, filter_normalize=norm))
    assert np.allclose(curve(net, True, alphas), curve(twin, True, alphas), atol=1e-4)
    # raw: the copy's rescaled layers move c times less per step: the copy along d is the original along d with
    # those layers' components divided by c (exact by the same invariance), and not the original along d
    d = random_direction(twin, seed=3, filter_normalize=False)
    p, q = dict(net.named_parameters()), dict(twin.named_parameters())
    rescaled = {n for n in p if p[n].dim() > 1 and torch.allclose(q[n], c * p[n]) and p[n].abs().sum() > 0}
    assert rescaled and all(n.endswith("weight") for n in rescaled) and "head.fc.module.weight" not in rescaled
    slower = {n: v / c if n in rescaled else v for n, v in d.items()}
    raw_twin = loss_landscape_1d(twin, sdt_loss, [(x, y)], alphas, direction=d)
    assert np.allclose(raw_twin, loss_landscape_1d(net, sdt_loss, [(x, y)], alphas, direction=slower), atol=1e-4)
    assert not np.allclose(raw_twin, loss_landscape_1d(net, sdt_loss, [(x, y)], alphas, direction=d), atol=1e-3)


def test_rescale_refuses_bad_input(net):
    with pytest.raises(ValueError, match="factor"):
        rescale_before_norm(net, 0.0)
    with pytest.raises(ValueError, match="factor"):
        rescale_before_norm(net, float("nan"))
    with pytest.raises(ValueError, match="nothing to rescale"):
        rescale_before_norm(torch.nn.Linear(3, 2), 2.0)
    with pytest.raises(TypeError, match="nn.Module"):
        rescale_before_norm("net", 2.0)
