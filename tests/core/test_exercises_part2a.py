"""Exercise checks of labs 06, 08 and 09 against hand-computed answers."""
from __future__ import annotations

import math

import pytest

from spikelab import exercises as ex

OUT = [[2.0, 0.0], [0.0, 2.0]]


def _ok(v):
    assert v.correct and v.status == "correct", v


def _wrong(v, *words):
    assert v.status == "wrong" and "not quite" in v.message, v
    for w in words:
        assert w in v.message, v


def test_loss_values_of_sdt_and_tet():
    sdt, tet = math.log(2), (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 2
    _ok(ex.check_loss_value(f"{sdt:.3f}", outputs=OUT, target=0, loss="sdt"))
    _ok(ex.check_loss_value(round(tet, 3), outputs=OUT, target=0, loss="tet"))
    _wrong(ex.check_loss_value(tet, outputs=OUT, target=0, loss="sdt"), "averages the logits")
    _wrong(ex.check_loss_value(sdt, outputs=OUT, target=0, loss="tet"), "every step")
    # with lam: (1 - lam) CE + lam * mean((O - phi)^2) = 0.9 * tet + 0.1 * ((1 + 1 + 1 + 1) / 4)
    _ok(ex.check_loss_value(0.9 * tet + 0.1, outputs=OUT, target=0, loss="tet", lam=0.1, phi=1.0))
    assert ex.check_loss_value(None, outputs=OUT, target=0, loss="sdt").status == "pending"


def test_epoch_steps_ratio():
    _ok(ex.check_epoch_steps_ratio(0.5, phases=[(300, 2), (50, 6)], scratch=(300, 6)))
    _ok(ex.check_epoch_steps_ratio("0.5", phases=[(6, 2), (1, 6)], scratch=(6, 6)))  # 18 / 36
    _wrong(ex.check_epoch_steps_ratio(350 / 300, phases=[(300, 2), (50, 6)], scratch=(300, 6)), "epochs x T")


def test_ramp_bounds_and_slope():
    _ok(ex.check_ramp(1 / 0.6, epoch=40))  # a = 0.2, b = 0.8
    _ok(ex.check_ramp(0.2, epoch=40, quantity="a"))
    _ok(ex.check_ramp(0.49, epoch=150, length=100, quantity="a"))  # past the schedule: the sharpest ramp
    _ok(ex.check_ramp(2.0 * 0.75, epoch=10, length=20, v_th=1.0, quantity="b"))  # stretched by 2 v_th
    _wrong(ex.check_ramp(2.5, epoch=40), "1 / (b - a)")
    with pytest.raises(ValueError, match="quantity"):
        ex.check_ramp(1.0, epoch=1, quantity="c")


def test_pipe_time_fraction():
    _ok(ex.check_pipe_time_fraction(2.2 / 6, pretrain_epochs=6, ann_epoch_cost=0.2, finetune_epochs=1,
                                    scratch_epochs=6))
    _wrong(ex.check_pipe_time_fraction(1 / 6, pretrain_epochs=6, ann_epoch_cost=0.2, finetune_epochs=1,
                                       scratch_epochs=6), "pretraining counts")


def test_nmnist_event_by_hand():
    # 0x0c = 12, 0x1f = 31, 0x80: p = 1 and t's top bits 0, then 0x012c = 300
    _ok(ex.check_nmnist_event("12, 31, 1, 300", record="0c 1f 80 01 2c"))
    _ok(ex.check_nmnist_event((5, 6, 1, 65537), record="05 06 81 00 01"))  # t = 1 * 65536 + 1
    _wrong(ex.check_nmnist_event((12, 31, 0, 300), record="0c 1f 80 01 2c"), "p is off")
    _wrong(ex.check_nmnist_event((12, 31, 1, 44), record="0c 1f 80 01 2c"), "t is off")
    assert "four whole numbers" in ex.check_nmnist_event("twelve", record="0c 1f 80 01 2c").message
    with pytest.raises(ValueError, match="exactly one event"):
        ex.check_nmnist_event((0, 0, 0, 0), record="00 f0 00 00 00")  # an overflow marker


def test_event_stem_weight_is_the_channel_mean():
    _ok(ex.check_event_stem(0.6, kernel=[0.3, 0.6, 0.9]))
    _ok(ex.check_event_stem(-0.25, kernel=[-0.25]))
    _wrong(ex.check_event_stem(1.8, kernel=[0.3, 0.6, 0.9]), "averaged")
