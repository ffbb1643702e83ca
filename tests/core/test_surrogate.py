"""Surrogates: closed-form derivative against autograd of the primitive; stability; the registry (SPEC 2)."""
import math

import pytest
import torch

from spikelab import surrogate

CASES = [
    ("atan", {}), ("atan", {"alpha": 5.0}),
    ("sigmoid", {}), ("sigmoid", {"alpha": 25.0}),
    ("fast_sigmoid", {}), ("fast_sigmoid", {"slope": 3.0}),
    ("triangle", {}), ("triangle", {"gamma": 0.3}),
    ("rectangle", {}), ("rectangle", {"width": 0.4}),
]
PEAKS = {"atan": ("alpha", lambda a: a / 2), "sigmoid": ("alpha", lambda a: a / 4),
         "fast_sigmoid": ("slope", lambda s: 1.0), "triangle": ("gamma", lambda g: 1 / g),
         "rectangle": ("width", lambda w: 1 / w)}


def grid(dtype):
    inner = torch.linspace(-3, 3, 1201, dtype=dtype)
    outer = torch.tensor([-1e4, -1e3, -57.3, -10.0, 10.0, 57.3, 1e3, 1e4], dtype=dtype)
    return torch.cat([inner, outer])


@pytest.mark.parametrize("name, params", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grad_matches_autograd_of_primitive(name, params, dtype):
    sg = surrogate.get(name, **params)
    x = grid(dtype).requires_grad_()
    (auto,) = torch.autograd.grad(sg.primitive(x).sum(), x)
    closed = sg.grad(x.detach())
    assert torch.isfinite(closed).all() and torch.isfinite(auto).all()
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(closed, auto, atol=tol, rtol=tol)


@pytest.mark.parametrize("name, params", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_or_inf_for_extreme_finite_inputs(name, params, dtype):
    sg = surrogate.get(name, **params)
    big = torch.finfo(dtype).max
    x = torch.tensor([-big, -1e30 if dtype == torch.float64 else -1e30, -1e4, -3.6, 0.0, 3.6, 1e4, big],
                     dtype=dtype)
    for out in (sg.primitive(x), sg.grad(x)):
        assert torch.isfinite(out).all(), (name, out)
    xr = x.clone().requires_grad_()
    sg(xr).sum().backward()
    assert torch.isfinite(xr.grad).all()


@pytest.mark.parametrize("name, params", CASES)
def test_peak_and_heaviside_forward(name, params):
    sg = surrogate.get(name, **params)
    key, peak = PEAKS[name]
    assert math.isclose(sg.peak, peak(getattr(sg, key)), rel_tol=1e-12)
    x = torch.tensor([-0.3, -1e-7, 0.0, 1e-7, 0.3], requires_grad=True)
    s = sg(x)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    g = torch.rand(5)
    s.backward(g)
    torch.testing.assert_close(x.grad, g * sg.grad(x.detach()))


def test_primitive_approaches_step_far_from_threshold():
    for name in ("atan", "sigmoid", "triangle", "rectangle"):
        p = surrogate.get(name).primitive(torch.tensor([-50.0, 50.0]))
        torch.testing.assert_close(p, torch.tensor([0.0, 1.0]), atol=1e-2, rtol=0)


def test_registry_and_errors():
    assert surrogate.names() == ["atan", "sigmoid", "fast_sigmoid", "triangle", "rectangle"]
    sg = surrogate.get("atan", alpha=3)
    assert repr(sg) == "ATan(alpha=3)"
    assert surrogate.get(sg) is sg
    assert surrogate.get("triangle", gamma=0.5) == surrogate.Triangle(0.5)
    with pytest.raises(ValueError, match="'atan', 'sigmoid', 'fast_sigmoid', 'triangle', 'rectangle'"):
        surrogate.get("erf")
    with pytest.raises(TypeError, match="'alpha'"):
        surrogate.get("atan", width=2)
    for name, key in [("atan", "alpha"), ("sigmoid", "alpha"), ("fast_sigmoid", "slope"),
                      ("triangle", "gamma"), ("rectangle", "width")]:
        with pytest.raises(ValueError, match=key):
            surrogate.get(name, **{key: 0.0})
        with pytest.raises(ValueError, match=key):
            surrogate.get(name, **{key: -1.0})
    with pytest.raises(TypeError, match="x"):
        surrogate.get("atan")([0.1])


def test_surrogate_is_not_snntorch_broken_sigmoid():
    # snnTorch 1.0.0's sigmoid surrogate overflows to NaN below about -3.5 at slope 25; ours stays finite
    x = torch.linspace(-20, 20, 401, requires_grad=True)
    surrogate.get("sigmoid", alpha=25.0)(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    # the triangle is a triangle: zero at |x| >= gamma, linear inside
    tri = surrogate.get("triangle", gamma=1.0)
    torch.testing.assert_close(tri.grad(torch.tensor([-1.5, -0.5, 0.0, 0.25, 1.0])),
                               torch.tensor([0.0, 0.5, 1.0, 0.75, 0.0]))


KEYS = [("atan", "alpha"), ("sigmoid", "alpha"), ("fast_sigmoid", "slope"), ("triangle", "gamma"),
        ("rectangle", "width")]


@pytest.mark.parametrize("name, key", KEYS)
@pytest.mark.parametrize("value", [1e-40, 1e-5, 2e4, 1e40])
def test_extreme_widths_are_refused(name, key, value):
    # surrogate.get("rectangle", width=1e-40) used to give inf gradients (height 1e40), breaking the module's promise
    with pytest.raises(ValueError, match=rf"{key} must be in \[0.0001, 10000\].*overflows"):
        surrogate.get(name, **{key: value})


@pytest.mark.parametrize("name, key", KEYS)
@pytest.mark.parametrize("end", surrogate.PARAM_RANGE)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_widths_at_the_ends_of_the_range_stay_finite(name, key, end, dtype):
    sg = surrogate.get(name, **{key: end})
    big = torch.finfo(dtype).max
    x = torch.tensor([-big, -1e4, -1.0, -2 * end, -end / 4, 0.0, end / 4, 2 * end, 1.0, 1e4, big], dtype=dtype)
    xr = x.clone().requires_grad_()
    sg(xr).sum().backward()
    for out in (sg.primitive(x), sg.grad(x), xr.grad):
        assert torch.isfinite(out).all(), (name, end, dtype, out)
    assert math.isclose(sg.peak, PEAKS[name][1](end), rel_tol=1e-12) and math.isfinite(sg.peak)


@pytest.mark.parametrize("name, key", KEYS)
@pytest.mark.parametrize("end", surrogate.PARAM_RANGE)
def test_grad_matches_autograd_at_the_ends_of_the_range(name, key, end):
    sg = surrogate.get(name, **{key: end})
    scale = end if key in ("gamma", "width") else 1 / end  # the surrogate's own width
    x = (torch.linspace(-3, 3, 601, dtype=torch.float64) * scale).requires_grad_()
    (auto,) = torch.autograd.grad(sg.primitive(x).sum(), x)
    torch.testing.assert_close(sg.grad(x.detach()), auto, rtol=1e-9, atol=1e-9 * sg.peak)
