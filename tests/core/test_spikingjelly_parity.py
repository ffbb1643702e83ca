"""Parity with SpikingJelly's multi-step LIF: with ``decay_input=False`` its charge is
``h = v + (x - (v - v_reset)) / tau`` without input scaling, i.e. ``h = (1 - 1/tau) v + x`` for ``v_reset = 0``."""
import pytest
import torch

sj = pytest.importorskip("spikingjelly.activation_based.neuron")
from spikingjelly.activation_based import functional, surrogate as sj_surrogate  # noqa: E402

from spikelab.neurons import LIF  # noqa: E402

pytestmark = pytest.mark.peer


@pytest.mark.parametrize("reset, v_reset", [("hard", 0.0), ("soft", None)])
@pytest.mark.parametrize("detach", [False, True])
def test_multistep_lif_matches(reset, v_reset, detach):
    decay = 0.75
    g = torch.Generator().manual_seed(7)
    x = torch.rand(25, 6, 20, generator=g, dtype=torch.float64) * 1.4
    x_sj, x_sl = x.clone().requires_grad_(), x.clone().requires_grad_()
    node = sj.LIFNode(tau=1 / (1 - decay), decay_input=False, v_reset=v_reset, detach_reset=detach,
                      surrogate_function=sj_surrogate.ATan(alpha=2.0), step_mode="m")
    functional.reset_net(node)
    s_sj = node(x_sj)
    s_sl = LIF(decay, 1.0, reset, "atan", detach)(x_sl)
    assert 0 < s_sl.mean() < 1
    assert torch.equal(s_sl, s_sj)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    (g_sj,) = torch.autograd.grad((s_sj * w).sum(), x_sj)
    (g_sl,) = torch.autograd.grad((s_sl * w).sum(), x_sl)
    torch.testing.assert_close(g_sl, g_sj)
