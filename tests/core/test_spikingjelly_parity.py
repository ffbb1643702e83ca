"""Parity with SpikingJelly's multi-step LIF and parametric LIF. For the LIF, with ``decay_input=False`` its charge is
``h = v + (x - (v - v_reset)) / tau`` without input scaling, i.e. ``h = (1 - 1/tau) v + x`` for ``v_reset = 0``."""
import pytest
import torch

sj = pytest.importorskip("spikingjelly.activation_based.neuron")
from spikingjelly.activation_based import functional, surrogate as sj_surrogate  # noqa: E402

from spikelab.neurons import LIF, PLIF  # noqa: E402

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


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("reset, v_reset", [("hard", 0.0), ("soft", None)])
@pytest.mark.parametrize("init_decay", [0.5, 0.8])
def test_plif_matches_parametric_lif_node(decay_input, reset, v_reset, init_decay):
    """PLIF's published form (Fang et al. 2021; SPEC section 1) against SpikingJelly's ``ParametricLIFNode``:
    the same spikes, the same input gradients and the same gradient of ``w`` (float64)."""
    g = torch.Generator().manual_seed(11)
    x = torch.rand(30, 5, 16, generator=g, dtype=torch.float64) * (2.5 if decay_input else 1.3)
    x_sj, x_sl = x.clone().requires_grad_(), x.clone().requires_grad_()
    node = sj.ParametricLIFNode(init_tau=1 / (1 - init_decay), decay_input=decay_input, v_reset=v_reset,
                                surrogate_function=sj_surrogate.ATan(alpha=2.0), step_mode="m").double()
    functional.reset_net(node)
    plif = PLIF(init_decay, 1.0, reset, "atan", decay_input=decay_input).double()
    torch.testing.assert_close(plif.w.detach(), node.w.detach())  # same parameter, same initial value
    s_sj, s_sl = node(x_sj), plif(x_sl)
    assert 0.05 < s_sl.mean() < 0.95
    assert torch.equal(s_sl, s_sj)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    (s_sj * w).sum().backward()
    (s_sl * w).sum().backward()
    torch.testing.assert_close(x_sl.grad, x_sj.grad)
    assert abs(float(node.w.grad)) > 1e-3
    torch.testing.assert_close(plif.w.grad, node.w.grad)


def test_plif_earlier_form_is_kept_as_an_option():
    """``form="decay", decay_input=False`` is spikelab's earlier PLIF (``decay = sigmoid(w)``, no input scaling):
    its forward is a LIF's, and its ``w`` is the published ``w`` negated, so the gradients have opposite signs."""
    g = torch.Generator().manual_seed(12)
    x = torch.rand(20, 4, 8, generator=g, dtype=torch.float64) * 1.5
    old = PLIF(0.3, form="decay", decay_input=False).double()
    new = PLIF(0.3, decay_input=False).double()
    assert torch.equal(old(x), LIF(0.3)(x)) and torch.equal(new(x), LIF(0.3)(x))
    torch.testing.assert_close(old.w.detach(), -new.w.detach())
    old(x).sum().backward()
    new(x).sum().backward()
    torch.testing.assert_close(old.w.grad, -new.w.grad)
