"""Parity with snnTorch, the field's teaching library (SPEC section 1).

- ``Leaky(reset_mechanism="zero")`` and spikelab's hard reset with ``detach_reset=True``: identical spikes, and
  with the atan surrogate identical input gradients; snnTorch returns the membrane before reset on a spike step.
- ``Leaky(reset_mechanism="subtract")`` subtracts the threshold one step late and outside the decay: it equals a
  hand-written loop of that rule, differs from the soft reset when beta < 1, and agrees with it when beta = 1.
"""
import pytest
import torch

snn = pytest.importorskip("snntorch")

from spikelab.neurons import LIF  # noqa: E402

pytestmark = pytest.mark.peer


def run_snntorch(leaky, x):
    mem = leaky.init_leaky()
    spikes, mems = [], []
    for xt in x.unbind(0):
        s, mem = leaky(xt, mem)
        spikes.append(s)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


@pytest.mark.parametrize("beta", [0.3, 0.7, 0.95, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_reset_equals_hard_detached(beta, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(30, 8, 16, generator=g, dtype=torch.float64) * 1.6 - 0.2
    x_snn = x.clone().requires_grad_()
    x_sl = x.clone().requires_grad_()
    s_snn, mem = run_snntorch(snn.Leaky(beta=beta, reset_mechanism="zero"), x_snn)
    lif = LIF(beta, 1.0, "hard", "atan", detach_reset=True, record=True)
    s_sl = lif(x_sl)
    assert s_sl.sum() > 0 and (s_sl == 0).sum() > 0  # the comparison is not vacuous
    assert torch.equal(s_sl, s_snn)
    # snnTorch's returned membrane: before reset on spike steps, after reset elsewhere
    torch.testing.assert_close(mem.detach(), torch.where(s_sl.bool(), lif.h_seq, lif.v_seq), rtol=1e-5, atol=1e-6)
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    (g_snn,) = torch.autograd.grad((s_snn * w).sum(), x_snn)
    (g_sl,) = torch.autograd.grad((s_sl * w).sum(), x_sl)
    assert g_sl.abs().sum() > 0
    # snnTorch keeps beta as a float32 buffer, so in float64 the two agree to float32 precision
    torch.testing.assert_close(g_sl, g_snn, rtol=1e-5, atol=1e-6)


def reference_subtract(x, beta, v_th):
    """snnTorch's subtract rule written out: v[t] = beta v[t-1] + I[t] - v_th s[t-1], s[t] = Theta(v[t] - v_th)."""
    v = torch.zeros_like(x[0])
    s = torch.zeros_like(x[0])
    out = []
    for xt in x:
        v = beta * v + xt - v_th * s
        s = (v - v_th >= 0).to(x.dtype)
        out.append(s)
    return torch.stack(out)


def test_subtract_reset_is_delayed_and_outside_the_decay():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(40, 4, 32, generator=g, dtype=torch.float64)
    s_snn, _ = run_snntorch(snn.Leaky(beta=0.5, reset_mechanism="subtract"), x)
    assert torch.equal(s_snn, reference_subtract(x, 0.5, 1.0))
    assert not torch.equal(s_snn, LIF(0.5, 1.0, "soft")(x))
    s_if, _ = run_snntorch(snn.Leaky(beta=1.0, reset_mechanism="subtract"), x)
    assert torch.equal(s_if, LIF(1.0, 1.0, "soft")(x))


def test_exactly_at_threshold_fires_here_but_not_in_snntorch():
    """The documented difference (README, lab 01): Theta(0) = 1 here, strict ``>`` in snnTorch. With I = 0.5 and no
    leak the membrane is exactly 1.0 at step 1."""
    x = torch.full((4, 1), 0.5)
    s_snn, _ = run_snntorch(snn.Leaky(beta=1.0, reset_mechanism="zero"), x)
    s_sl = LIF(1.0, 1.0, "hard", detach_reset=True)(x)
    assert s_sl.flatten().tolist() == [0, 1, 0, 1]
    assert s_snn.flatten().tolist() == [0, 0, 1, 0]
