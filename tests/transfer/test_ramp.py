"""The clipped ramp of pipe-S and its schedule, against SPEC section 4's formula written out here."""
from __future__ import annotations

import pytest
import torch

from spikelab import data, models
from spikelab.training import fit
from spikelab.transfer import ClippedRamp, RampAnnealing, RampSchedule, ramp_twin, ramps, set_ramp_epoch


def spec_bounds(e):
    """SPEC section 4, official code: a = min(e/200, 0.49), b = 1 - e/200."""
    return min(e / 200, 0.49), 1 - e / 200


@pytest.mark.parametrize("epoch", [0, 1, 10, 50, 98, 99, 100])
def test_official_schedule_matches_spec(epoch):
    a, b = RampSchedule().bounds(epoch)  # official: length 100 epochs, v_th 0.5
    sa, sb = spec_bounds(epoch)
    assert a == pytest.approx(sa, abs=1e-15) and b == pytest.approx(sb, abs=1e-15)
    x = torch.linspace(-0.5, 1.5, 2001, dtype=torch.float64)
    ramp = ClippedRamp(epoch=epoch)
    want = torch.clamp((x - sa) / (sb - sa), 0, 1)
    torch.testing.assert_close(ramp(x), want, rtol=0, atol=1e-12)


def test_schedule_length_threshold_and_hold():
    s = RampSchedule(length=20)
    assert s.bounds(10) == pytest.approx(spec_bounds(100 * 10 / 20))  # half-way through a 20-epoch schedule
    assert s.bounds(20) == pytest.approx((0.49, 0.5))
    assert s.bounds(35) == s.bounds(20)  # past its length the sharpest ramp holds (the formula would break at 20.4)
    assert RampSchedule().bounds(50, v_th=1.0) == pytest.approx((0.5, 1.5))  # stretched by 2 v_th
    # the sharpest ramp is the spike step at v_th away from a 1 % band around it
    ramp = ClippedRamp(v_th=1.0, schedule=s, epoch=20)
    x = torch.tensor([-1.0, 0.5, 0.97, 1.01, 1.5, 3.0])
    assert ramp(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="length must be"):
        RampSchedule(length=0)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        ClippedRamp(epoch=-1)
    with pytest.raises(TypeError, match="schedule must be a RampSchedule"):
        ClippedRamp(schedule=20)


def test_backward_is_the_official_rectangle_surrogate_or_the_ramp_itself():
    x = (torch.linspace(-0.6, 1.6, 221, dtype=torch.float64) + 1.3e-3).requires_grad_()  # no point on a kink
    ClippedRamp(epoch=90)(x).sum().backward()
    # official: dL/dx = 1 where |x - 0.5| < 0.5 (rectangle of width 1 at the threshold), whatever the epoch
    want = ((x.detach() - 0.5).abs() < 0.5).double()
    torch.testing.assert_close(x.grad, want)
    x.grad = None
    a, b = spec_bounds(90)
    ClippedRamp(epoch=90, surrogate=None)(x).sum().backward()
    inside = (x.detach() > a) & (x.detach() < b)
    torch.testing.assert_close(x.grad, inside.double() / (b - a))


def test_ramp_twin_has_the_snns_keys_and_no_state():
    twin = ramp_twin("conv-small", num_classes=10, in_channels=1, channels=(4, 6))
    snn = models.build("conv-small", num_classes=10, in_channels=1, T=4, channels=(4, 6))
    assert list(twin.state_dict()) == list(snn.state_dict())
    assert len(ramps(twin)) == 2 and all(r.v_th == 0.5 for r in ramps(twin))
    assert twin.T == 1 and not twin.spiking
    assert set_ramp_epoch(twin, 7) == 2 and all(r.epoch == 7 for r in ramps(twin))


def test_annealing_uses_epoch_e_during_epoch_e():
    loaders = data.make_loaders("digits", batch_size=32, limit=64)
    twin = ramp_twin("conv-small", num_classes=10, in_channels=1, channels=(4, 6), schedule=RampSchedule(3))
    seen = []
    ramps(twin)[0].register_forward_hook(lambda m, i, o: seen.append((m.training, m.epoch)))
    fit(twin, loaders, epochs=3, callbacks=RampAnnealing(twin), progress=False, device="cpu")
    train_epochs = sorted({e for training, e in seen if training})
    eval_epochs = sorted({e for training, e in seen if not training})
    assert train_epochs == eval_epochs == [1.0, 2.0, 3.0]
    assert all(r.epoch == 3 for r in ramps(twin))  # stays at the last trained epoch
    with pytest.raises(ValueError, match="no ClippedRamp"):
        RampAnnealing(models.build("conv-small", num_classes=10, in_channels=1, T=1))
