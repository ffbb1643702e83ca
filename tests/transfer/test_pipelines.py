"""pipe-S and pipe-D stage by stage on tiny data, and their clear errors (SPEC section 4)."""
from __future__ import annotations

import copy

import pytest
import torch

from spikelab import data, models
from spikelab.training import evaluate
from spikelab.transfer import (
    FINETUNE_CONFIG,
    PIPE_S_NEURON,
    RampSchedule,
    finetune,
    finetune_events,
    pretrain,
    ramp_twin,
    ramps,
    to_event_model,
    transfer,
)

QUIET = dict(progress=False, device="cpu")
SMALL = dict(channels=(4, 6))


@pytest.fixture(scope="module")
def digits():
    return data.make_loaders("digits", batch_size=32, limit=96, seed=0)


@pytest.fixture(scope="module")
def digit_events():
    return data.make_loaders("digits-events", batch_size=32, limit=64, T=3, seed=0)


def _snn(T=3, **kw):
    return models.build("conv-small", num_classes=10, in_channels=1, T=T, neuron=PIPE_S_NEURON, **SMALL, **kw)


def test_pipe_s_stage_by_stage(digits):
    torch.manual_seed(0)
    ann = ramp_twin("conv-small", num_classes=10, in_channels=1, schedule=RampSchedule(2), **SMALL)
    h = pretrain(ann, digits, epochs=2, lr=0.02, **QUIET)
    assert len(h.epochs) == 2 and all(r.epoch == 2 for r in ramps(ann))
    snn = _snn()
    copied = transfer(ann, snn)
    assert copied == {k: k for k in snn.state_dict()}
    assert all(torch.equal(snn.state_dict()[k], v) for k, v in ann.state_dict().items())
    assert snn.body.sn1.v_th == 0.5 and snn.stem.bn.v_th == 0.5  # the official neuron, tdBN scale at v_th
    before = evaluate(snn, digits[1])["acc"]
    assert 0.0 <= before <= 1.0
    h2 = finetune(snn, digits, epochs=3, lr=0.01, **QUIET)
    assert [e["lr"] for e in h2.epochs] == pytest.approx([0.01, 0.01, 0.003])  # lr x 0.3 every 2 epochs
    assert (FINETUNE_CONFIG.optimizer, FINETUNE_CONFIG.momentum, FINETUNE_CONFIG.step_size,
            FINETUNE_CONFIG.gamma) == ("sgd", 0.9, 2, 0.3)


def test_pipe_s_errors(digits, digit_events):
    ann = ramp_twin("conv-small", num_classes=10, in_channels=1, **SMALL)
    snn = _snn()
    with pytest.raises(ValueError, match="ann must be the ANN twin"):
        transfer(snn, snn)
    with pytest.raises(ValueError, match="snn must be the SNN"):
        transfer(ann, ann)
    lab = models.build("conv-small", num_classes=10, in_channels=1, T=3, **SMALL)  # v_th 1
    with pytest.raises(ValueError, match="annealed toward a step at v_th=0.5, but snn's neurons fire at v_th=1"):
        transfer(ann, lab)
    other = models.build("conv-small", num_classes=10, in_channels=1, T=3, neuron=PIPE_S_NEURON, channels=(4, 8))
    with pytest.raises(ValueError, match="shape mismatch at key 'body.conv2.conv.module.weight'"):
        transfer(ann, other)
    with pytest.raises(ValueError, match="pipe-S pretrains on static images"):
        pretrain(ramp_twin("conv-small", num_classes=10, in_channels=2, input_size=(12, 12), **SMALL),
                 digit_events, epochs=1, **QUIET)
    with pytest.raises(ValueError, match="no ClippedRamp"):
        pretrain(models.build("conv-small", num_classes=10, in_channels=1, T=1, spiking=False), digits, **QUIET)
    with pytest.raises(ValueError, match="use finetune_events"):
        finetune(models.build("conv-small", num_classes=10, in_channels=2, T=3, input_size=(12, 12), **SMALL),
                 digit_events, epochs=1, **QUIET)


def test_pipe_d_stage_by_stage(digits, digit_events):
    static = _snn()
    with torch.no_grad():
        for p in static.parameters():
            p.add_(0.1 * torch.randn_like(p))
    event = models.build("conv-small", num_classes=10, in_channels=2, T=3, input_size=(12, 12),
                         neuron=PIPE_S_NEURON, **SMALL)
    head = event.head.fc.module.weight.clone()
    copied = to_event_model(static, event)
    assert set(copied) == {k for k in event.state_dict() if not k.startswith("head.fc.")}
    w = static.stem.conv.module.weight  # [4, 1, 3, 3]
    assert torch.equal(event.stem.conv.module.weight, w.mean(1, keepdim=True).expand(4, 2, 3, 3))
    assert torch.equal(event.head.fc.module.weight, head)  # a new head (12x12 frames: another shape anyway)
    assert torch.equal(event.body.conv2.conv.module.weight, static.body.conv2.conv.module.weight)
    assert torch.equal(event.stem.bn.running_var, static.stem.bn.running_var)

    body = copy.deepcopy({k: v for k, v in event.state_dict().items() if k.startswith("body.")})
    stem = event.stem.conv.module.weight.clone()
    seen = {}

    def spy(ev, r):
        if ev == "epoch_end" and r["epoch"] == 1:
            seen.update({k: v.clone() for k, v in event.named_parameters()})

    h = finetune_events(event, digit_events, frozen_epochs=1, unfrozen_epochs=1, lr=0.05, callbacks=spy, **QUIET)
    assert [e["phase"] for e in h.epochs] == ["frozen body", "unfrozen"]
    frozen_params = [k for k in seen if k.startswith("body.")]
    assert frozen_params and all(torch.equal(seen[k], body[k]) for k in frozen_params)
    assert not torch.equal(seen["stem.conv.module.weight"], stem)  # the new stem and head learn from epoch 1
    assert not torch.equal(seen["head.fc.module.weight"], head)
    assert not all(torch.equal(dict(event.named_parameters())[k], body[k]) for k in frozen_params)


def test_pipe_d_errors(digits, digit_events):
    static = _snn()
    event = models.build("conv-small", num_classes=10, in_channels=2, T=3, input_size=(12, 12), **SMALL)
    with pytest.raises(ValueError, match="event must take 2-channel event frames, but its stem takes 1"):
        to_event_model(static, _snn())
    mlp = models.build("mlp", num_classes=10, in_channels=1, T=3)
    with pytest.raises(ValueError, match="static has no convolutional stem"):
        to_event_model(mlp, event)
    with pytest.raises(ValueError, match="pipe-D fine-tunes on event sequences .* but the data are static"):
        finetune_events(event, digits, frozen_epochs=1, **QUIET)
    event.T = 5
    with pytest.raises(ValueError, match="T mismatch: the event frames have T=3 steps but the model has T=5"):
        finetune_events(event, digit_events, frozen_epochs=1, **QUIET)
    event.T = 3
    with pytest.raises(ValueError, match="frozen_epochs \\+ unfrozen_epochs must be >= 1"):
        finetune_events(event, digit_events, frozen_epochs=0, **QUIET)
    with pytest.raises(ValueError, match="trainable entry 'neck.' matches no parameter"):
        finetune_events(event, digit_events, frozen_epochs=1, trainable=("neck.",), **QUIET)
