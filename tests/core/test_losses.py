"""SDT and TET against explicit per-time-step reference loops (SPEC section 3)."""
import pytest
import torch
import torch.nn.functional as F

from spikelab.losses import get_loss, rate_accuracy, rate_predict, sdt_loss, tet_loss


def reference_tet(outputs, targets, lam, phi):
    T = outputs.shape[0]
    ce = sum(F.cross_entropy(outputs[t], targets) for t in range(T)) / T
    mse = sum(((outputs[t] - phi) ** 2).mean() for t in range(T)) / T
    return (1 - lam) * ce + lam * mse


def reference_sdt(outputs, targets):
    mean = sum(outputs[t] for t in range(outputs.shape[0])) / outputs.shape[0]
    return F.cross_entropy(mean, targets)


@pytest.mark.parametrize("T", [1, 4, 7])
@pytest.mark.parametrize("lam, phi", [(0.0, 1.0), (0.05, 1.0), (0.3, 0.5)])
def test_tet_matches_loop(T, lam, phi):
    torch.manual_seed(T)
    out = torch.randn(T, 6, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (6,))
    got = tet_loss(out, y, lam=lam, phi=phi)
    want = reference_tet(out, y, lam, phi)
    torch.testing.assert_close(got, want)
    g1 = torch.autograd.grad(got, out)[0]
    g2 = torch.autograd.grad(reference_tet(out, y, lam, phi), out)[0]
    torch.testing.assert_close(g1, g2)


def test_tet_per_step_targets_match_loop():
    out = torch.randn(3, 4, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (3, 4))
    want = sum(F.cross_entropy(out[t], y[t]) for t in range(3)) / 3
    torch.testing.assert_close(tet_loss(out, y, lam=0.0), want)


@pytest.mark.parametrize("T", [1, 3, 8])
def test_sdt_matches_loop(T):
    out = torch.randn(T, 5, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (5,))
    torch.testing.assert_close(sdt_loss(out, y), reference_sdt(out, y))


def test_sdt_never_exceeds_tet_at_lam_zero():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        T, B, C = [int(v) for v in torch.randint(1, 9, (3,), generator=g)]
        C += 1
        out = torch.randn(T, B, C, generator=g, dtype=torch.float64) * 3
        y = torch.randint(0, C, (B,), generator=g)
        assert sdt_loss(out, y) <= tet_loss(out, y, lam=0.0) + 1e-12


def test_rate_prediction_and_accuracy():
    out = torch.zeros(2, 3, 3)
    out[0, 0, 1] = 5.0
    out[1, 0, 2] = 4.0  # mean favours class 1 for sample 0
    out[:, 1, 2] = 1.0
    out[0, 2, 0] = 1.0
    assert rate_predict(out).tolist() == [1, 2, 0]
    assert rate_accuracy(out, torch.tensor([1, 2, 2])) == pytest.approx(2 / 3)


def test_get_loss():
    out = torch.randn(3, 4, 5)
    y = torch.randint(0, 5, (4,))
    torch.testing.assert_close(get_loss("tet", lam=0.1)(out, y), tet_loss(out, y, lam=0.1))
    assert get_loss("sdt") is sdt_loss
    with pytest.raises(ValueError, match="'sdt', 'tet'"):
        get_loss("mse")


@pytest.mark.parametrize(
    "outputs, targets, exc, match",
    [
        (torch.randn(4, 5), torch.zeros(4, dtype=torch.long), ValueError, r"outputs.*\[T, B, C\]"),
        (torch.randn(3, 4, 5), torch.zeros(5, dtype=torch.long), ValueError, "B = 4"),
        (torch.randn(3, 4, 5), torch.zeros(2, 4, dtype=torch.long), ValueError, r"\[T, B\] = \[3, 4\]"),
        (torch.randn(3, 4, 5), torch.full((4,), 5), ValueError, r"\[0, 4\]"),
        (torch.randn(3, 4, 5), torch.zeros(4), TypeError, "integer"),
        (torch.randn(0, 4, 5), torch.zeros(4, dtype=torch.long), ValueError, "T >= 1"),
    ],
)
def test_bad_input(outputs, targets, exc, match):
    with pytest.raises(exc, match=match):
        tet_loss(outputs, targets)


def test_bad_lam_and_sdt_per_step_targets():
    out, y = torch.randn(3, 4, 5), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="lam"):
        tet_loss(out, y, lam=1.5)
    with pytest.raises(ValueError, match=r"targets must be \[B\]"):
        sdt_loss(out, torch.zeros(3, 4, dtype=torch.long))
