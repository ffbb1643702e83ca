"""Pretraining as a bridge from ANNs to SNNs (Lin et al. 2022; SPEC section 4): the public contract.

- :class:`ClippedRamp` and :class:`RampSchedule`: the ANN twin's activation, ``clip((x - a) / (b - a), 0, 1)``
  with ``a = min(e/200, 0.49)``, ``b = 1 - e/200`` at pretraining epoch ``e`` (official, threshold 0.5), annealed
  toward the spike step; :class:`RampAnnealing` moves it during ``fit``.
- :func:`transfer_weights`: every parameter and BN buffer from one network to another by an explicit key map
  (identity by default), each shape checked, under ``no_grad``; returns what it copied.
- :func:`event_stem`: a 2-channel (ON/OFF) first conv whose kernels are the mean of a static model's first conv
  over its input channels.
- pipe-S as stages: :func:`ramp_twin`, :func:`pretrain`, :func:`transfer`, :func:`finetune`.
- pipe-D as stages: :func:`to_event_model`, :func:`finetune_events` (body frozen, then optionally unfrozen).

    from spikelab import data, models, transfer
    loaders = data.make_loaders("digits", batch_size=64)
    ann = transfer.ramp_twin("conv-small", num_classes=10, in_channels=1, schedule=transfer.RampSchedule(20))
    snn = models.build("conv-small", num_classes=10, in_channels=1, T=4, neuron=transfer.PIPE_S_NEURON)
    transfer.pretrain(ann, loaders, epochs=20)      # the ramps reach their sharpest at epoch 20
    transfer.transfer(ann, snn)                     # {key: key} of every tensor copied
    transfer.finetune(snn, loaders, epochs=4, lr=0.02)
"""
from spikelab.transfer.pipelines import (
    FINETUNE_CONFIG,
    PIPE_S_NEURON,
    finetune,
    finetune_events,
    pretrain,
    ramp_twin,
    to_event_model,
    transfer,
)
from spikelab.transfer.ramp import ClippedRamp, RampAnnealing, RampSchedule, ramps, set_ramp_epoch
from spikelab.transfer.weights import event_stem, transfer_weights

__all__ = [
    "ClippedRamp", "RampSchedule", "RampAnnealing", "ramps", "set_ramp_epoch", "transfer_weights", "event_stem",
    "PIPE_S_NEURON", "FINETUNE_CONFIG", "ramp_twin", "pretrain", "transfer", "finetune", "to_event_model",
    "finetune_events",
]
