"""Neurons against hand-computed golden trajectories and an independent reference loop (SPEC section 1)."""
import math

import pytest
import torch

from spikelab import surrogate
from spikelab.neurons import IF, LIF, PLIF, NeuronConfig, decay_from_tau, neuron_sequence, tau_from_decay

X = [0.6, 0.6, 0.6, 2.0, 0.1]

# decay 0.5, v_th 1: worked by hand from h[t] = 0.5 v[t-1] + I[t]
GOLDEN = {
    "hard": dict(s=[0, 0, 1, 1, 0], h=[0.6, 0.9, 1.05, 2.0, 0.1], v=[0.6, 0.9, 0, 0, 0.1]),
    "soft": dict(s=[0, 0, 1, 1, 0], h=[0.6, 0.9, 1.05, 2.025, 0.6125], v=[0.6, 0.9, 0.05, 1.025, 0.6125]),
    "none": dict(s=[0, 0, 1, 1, 1], h=[0.6, 0.9, 1.05, 2.525, 1.3625], v=[0.6, 0.9, 1.05, 2.525, 1.3625]),
}


def seq(values):
    return torch.tensor(values, dtype=torch.float64).view(-1, 1)  # [T, B=1]


@pytest.mark.parametrize("mode", ["hard", "soft", "none"])
def test_golden_trajectories(mode):
    lif = LIF(0.5, 1.0, mode, record=True)
    s = lif(seq(X))
    g = GOLDEN[mode]
    assert s.flatten().tolist() == g["s"]
    torch.testing.assert_close(lif.h_seq.flatten(), torch.tensor(g["h"], dtype=torch.float64))
    torch.testing.assert_close(lif.v_seq.flatten(), torch.tensor(g["v"], dtype=torch.float64))


def test_hard_reset_to_v_reset():
    lif = LIF(0.5, 1.0, "hard", v_reset=-0.5, record=True)
    s = lif(seq(X))
    assert s.flatten().tolist() == [0, 0, 1, 1, 0]
    torch.testing.assert_close(lif.v_seq.flatten(), seq([0.6, 0.9, -0.5, -0.5, -0.15]).flatten())


def test_if_fires_at_threshold_exactly():
    # Theta(0) = 1: a membrane that reaches v_th exactly fires
    s = IF(1.0)(seq([0.5, 0.5, 0.5, 0.5]))
    assert s.flatten().tolist() == [0, 1, 0, 1]


def test_step_by_step_equals_sequence_and_reset_state():
    torch.manual_seed(1)
    x = torch.rand(12, 3, 5)
    lif = LIF(0.8, 0.7, "soft")
    whole = lif(x)
    stepped = torch.stack([lif.step(xt) for xt in x])
    assert torch.equal(whole, stepped)
    lif.reset_state()
    assert lif.v is None
    assert torch.equal(torch.stack([lif.step(xt) for xt in x]), whole)
    with pytest.raises(ValueError, match="reset_state"):
        lif.step(torch.rand(2, 2))


def test_sequence_calls_are_independent():
    x = torch.rand(6, 2, 4) * 2
    lif = LIF(0.9)
    assert torch.equal(lif(x), lif(x))


def _reference_loop(x, decay, v_th, mode, detach, sg):
    """SPEC section 1 written out directly, spikes via a straight-through estimator on the primitive."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = decay * v + x[t]
        p = sg.primitive(h - v_th)
        s = (h - v_th >= 0).to(x.dtype) + p - p.detach()
        r = s.detach() if detach else s
        if mode == "hard":
            v = h * (1 - r)
        elif mode == "soft":
            v = h - v_th * r
        else:
            v = h
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("mode", ["hard", "soft", "none"])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("sg_name", ["atan", "triangle"])
def test_gradients_match_reference_loop(mode, detach, sg_name):
    torch.manual_seed(2)
    sg = surrogate.get(sg_name)
    x1 = (torch.rand(10, 3, 4, dtype=torch.float64) * 1.2).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    w = torch.randn(10, 3, 4, dtype=torch.float64)
    s1 = LIF(0.6, 1.0, mode, sg, detach)(x1)
    s2 = _reference_loop(x2, 0.6, 1.0, mode, detach, sg)
    torch.testing.assert_close(s1, s2.detach(), atol=1e-12, rtol=0)
    (s1 * w).sum().backward()
    (s2 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_detach_reset_changes_gradient_only():
    torch.manual_seed(3)
    x = (torch.rand(8, 2, 6, dtype=torch.float64) * 1.5).requires_grad_()
    g = []
    for det in (False, True):
        s = LIF(0.5, 1.0, "hard", "atan", det)(x)
        g.append(torch.autograd.grad(s.sum(), x)[0])
    assert not torch.allclose(g[0], g[1])


def test_plif_decay_is_learned():
    plif = PLIF(0.25)
    assert math.isclose(plif.decay.item(), 0.25, rel_tol=1e-6)
    assert math.isclose(torch.sigmoid(plif.w).item(), 0.75, rel_tol=1e-6)  # published form: 1/tau = sigmoid(w)
    x = torch.rand(5, 2, 3, dtype=torch.float64) * 2
    plif.double()(x).sum().backward()
    assert plif.w.grad is not None and plif.w.grad.abs() > 0
    # the published form scales the input by 1/tau = 1 - decay: a LIF with the same decay on (1 - decay) * x
    assert torch.equal(plif(x), LIF(0.25)(0.75 * x))
    assert torch.equal(PLIF(0.25, decay_input=False).double()(x), LIF(0.25)(x))


def test_tau_helpers_roundtrip():
    assert math.isclose(decay_from_tau(2.0), math.exp(-0.5))
    assert math.isclose(decay_from_tau(4.0, method="euler"), 0.75)
    for method in ("exact", "euler"):
        assert math.isclose(tau_from_decay(decay_from_tau(5.0, 0.5, method), 0.5, method), 5.0)
    assert tau_from_decay(1.0) == math.inf


def test_neuron_config_builds_each_kind():
    assert isinstance(NeuronConfig(kind="if").build(), IF)
    lif = NeuronConfig(kind="lif", decay=0.25, v_th=0.5, surrogate=surrogate.get("rectangle")).build()
    assert lif.decay == 0.25 and lif.v_th == 0.5 and lif.surrogate == surrogate.Rectangle(1.0)
    assert isinstance(NeuronConfig(kind="plif").build(), PLIF)


def test_functional_sequence_carries_state():
    x = torch.rand(8, 2, 3) * 1.5
    kw = dict(decay=0.5, v_th=1.0, reset_mode="hard", surrogate=surrogate.get("atan"))
    whole = neuron_sequence(x, **kw)
    first = neuron_sequence(x[:3], **kw)
    second = neuron_sequence(x[3:], v_init=first.v, **kw)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), whole.spikes)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(decay=1.5), ValueError, "decay"),
        (dict(decay=-0.1), ValueError, "decay"),
        (dict(v_th=0.0), ValueError, "v_th"),
        (dict(v_th=-1.0), ValueError, "v_th"),
        (dict(reset="zero"), ValueError, "'hard', 'soft', 'none'"),
        (dict(surrogate="erf"), ValueError, "atan"),
        (dict(decay="0.5"), TypeError, "decay"),
        (dict(detach_reset=1), TypeError, "detach_reset"),
    ],
)
def test_constructor_rejects_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LIF(**kwargs)


def test_forward_rejects_missing_time_axis():
    with pytest.raises(ValueError, match=r"x_seq.*\[T, B"):
        LIF()(torch.rand(5))
    with pytest.raises(ValueError, match="T >= 1"):
        LIF()(torch.rand(0, 3))
    with pytest.raises(TypeError, match="x_seq"):
        LIF()([[0.1]])
    with pytest.raises(ValueError, match="init_decay"):
        PLIF(1.0)
    with pytest.raises(ValueError, match="kind"):
        NeuronConfig(kind="izhikevich")
