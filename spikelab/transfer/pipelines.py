"""pipe-S and pipe-D of Lin et al. 2022 (SPEC section 4) as named stages, each callable on its own.

pipe-S (static data): :func:`ramp_twin` builds the ANN twin with :class:`ClippedRamp` activations;
:func:`pretrain` trains it (one step, no time dimension) while the ramps anneal toward the spike step;
:func:`transfer` copies every parameter and BN buffer into the SNN (identity key map, no threshold balancing);
:func:`finetune` trains the SNN with BPTT (official: SGD, lr x 0.3 every 2 epochs).

pipe-D (static pretraining -> event data): :func:`to_event_model` copies a static-pretrained network into a model
built for 2-channel event frames, with the stem conv from :func:`event_stem` and a new classifier head;
:func:`finetune_events` trains it with the transferred body frozen for some epochs, then optionally unfrozen.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from torch import nn

from spikelab._checks import check_int
from spikelab.history import History
from spikelab.models import SpikingModel, build
from spikelab.neurons import PLIF, NeuronConfig
from spikelab.training import Phase, TrainConfig, fit, fit_phases
from spikelab.training.callbacks import CallbackList
from spikelab.transfer.ramp import ClippedRamp, RampAnnealing, RampSchedule, ramps
from spikelab.transfer.weights import event_stem, transfer_weights

#: The official neuron of the pretraining code (SPEC sections 1 and 4): LIF, decay 0.25, v_th 0.5, hard reset with
#: a detached gate, rectangle surrogate of width 1 (tdBN's scale then starts at v_th = 0.5, as there).
PIPE_S_NEURON = NeuronConfig(kind="lif", decay=0.25, v_th=0.5, reset="hard", detach_reset=True,
                             surrogate="rectangle")

#: The official fine-tuning recipe of pipe-S: SGD with momentum 0.9, no weight decay, lr x 0.3 every 2 epochs
#: (the official milestones 2, 4, 6, 8; identical for up to 10 epochs, after which "step" keeps decaying).
#: The official lr 0.1 is for batch 256 on ImageNet; pass your own (``finetune(..., lr=...)``).
FINETUNE_CONFIG = TrainConfig(epochs=8, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=0.0, schedule="step",
                              step_size=2, gamma=0.3)


def _info(data: Any) -> Any:
    """The DatasetInfo of ``(train, test, info)`` as ``make_loaders`` returns it, else None."""
    return data[2] if isinstance(data, (tuple, list)) and len(data) == 3 else None


def _data_kind(data: Any, sequence_input: bool | None) -> bool | None:
    """True for event sequences, False for static images, None if it cannot be told without reading a batch."""
    if sequence_input is not None:
        return bool(sequence_input)
    info = _info(data)
    return None if info is None or not hasattr(info, "is_event") else bool(info.is_event)


def _check_model(model: Any, name: str, spiking: bool) -> SpikingModel:
    if not isinstance(model, SpikingModel):
        raise TypeError(f"{name} must be a spikelab model (spikelab.models.build), got {type(model).__name__}")
    if model.spiking != spiking:
        want = "the SNN (spiking=True)" if spiking else "the ANN twin (spiking=False)"
        raise ValueError(f"{name} must be {want}, got a model with spiking={model.spiking}")
    return model


def ramp_twin(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    neuron: NeuronConfig = PIPE_S_NEURON,
    schedule: RampSchedule | None = None,
    **build_kwargs: Any,
) -> SpikingModel:
    """pipe-S stage 1: the ANN twin of ``models.build(name, ...)`` with a :class:`ClippedRamp` in every neuron's
    place (T = 1: no time dimension). ``neuron`` is the SNN's (its ``v_th`` sets the ramp's target step and
    tdBN's initial scale, its surrogate the ramp's backward); build the SNN with the same ``name``, ``neuron`` and
    ``build_kwargs`` for :func:`transfer`. ``schedule``: the ramp's annealing (default: official, 100 epochs)."""
    if not isinstance(neuron, NeuronConfig):
        raise TypeError(f"neuron must be a NeuronConfig, got {type(neuron).__name__}")

    def act() -> ClippedRamp:
        return ClippedRamp(v_th=neuron.v_th, surrogate=neuron.surrogate, schedule=schedule)

    return build(name, num_classes=num_classes, in_channels=in_channels, T=1, neuron=neuron, spiking=False,
                 activation=act, **build_kwargs)


def pretrain(ann: SpikingModel, data: Any, config: TrainConfig | None = None, *, callbacks: Any = None,
             sequence_input: bool | None = None, **fit_kwargs: Any) -> History:
    """pipe-S stage 2: train the ramp twin on static images with ``fit``, annealing its ramps by epoch
    (:class:`RampAnnealing`: epoch ``e`` uses the ramp of epoch ``e``). ``fit_kwargs`` go to ``fit``
    (``run_dir``, TrainConfig overrides, ...). Raises ``ValueError`` for event data or a model without ramps."""
    _check_model(ann, "ann", spiking=False)
    if not ramps(ann):
        raise ValueError("ann has no ClippedRamp activation: build it with spikelab.transfer.ramp_twin")
    if _data_kind(data, sequence_input):
        raise ValueError("pipe-S pretrains on static images [B, C, H, W], but the data are event sequences; "
                         "for event data, pretrain on static images and use pipe-D (to_event_model)")
    cbs = [RampAnnealing(ann), *CallbackList(callbacks).callbacks]
    return fit(ann, data, config, callbacks=cbs, sequence_input=sequence_input, **fit_kwargs)


def transfer(ann: SpikingModel, snn: SpikingModel, *, key_map: dict[str, str] | None = None) -> dict[str, str]:
    """pipe-S stage 3: copy every parameter and BN buffer of the pretrained twin into the SNN with
    :func:`transfer_weights` (identity key map; PLIF's learned decays keep their initial value). No threshold
    balancing: the ramps were annealed toward the SNN's step at ``v_th``.

    Raises:
        ValueError: ``ann`` is not the ANN twin or ``snn`` not the SNN, their thresholds differ (the ramps aimed at
            another step), or their layers do not correspond / shapes differ (naming the key).
    """
    _check_model(ann, "ann", spiking=False)
    _check_model(snn, "snn", spiking=True)
    for r in ramps(ann)[:1]:
        if abs(r.v_th - snn.v_th) > 1e-12:
            raise ValueError(f"the ramps of ann were annealed toward a step at v_th={r.v_th:g}, but snn's neurons "
                             f"fire at v_th={snn.v_th:g}: build both with the same neuron")
    plif = [f"{n}.w" for n, m in snn.neurons() if isinstance(m, PLIF)]
    return transfer_weights(ann, snn, key_map, dst_only=plif)


def finetune(snn: SpikingModel, data: Any, config: TrainConfig | None = None, *,
             sequence_input: bool | None = None, **fit_kwargs: Any) -> History:
    """pipe-S stage 4: BPTT fine-tuning of the transferred SNN with ``fit``; ``config`` defaults to
    :data:`FINETUNE_CONFIG` (the official step schedule) and keyword overrides change it
    (``finetune(snn, data, epochs=4, lr=0.02)``). Raises ``ValueError`` for event data or a non-spiking model."""
    _check_model(snn, "snn", spiking=True)
    if _data_kind(data, sequence_input):
        raise ValueError("pipe-S fine-tunes on the static images it pretrained on, but the data are event "
                         "sequences; use finetune_events (pipe-D)")
    return fit(snn, data, config if config is not None else FINETUNE_CONFIG, sequence_input=sequence_input,
               **fit_kwargs)


def _stem_conv(model: SpikingModel, name: str) -> nn.Module:
    conv = getattr(getattr(model, "stem", None), "conv", None)
    if conv is None:
        raise ValueError(f"{name} has no convolutional stem (stem.conv): pipe-D needs a conv network")
    return conv


def to_event_model(static: SpikingModel, event: SpikingModel, *, head: str = "head.fc",
                   channels: int = 2) -> dict[str, str]:
    """pipe-D stages 1-3: copy the static-pretrained ``static`` into ``event``, a model of the same layout built
    for ``channels``-channel event frames (e.g. ``models.build(name, in_channels=2, num_classes=...)``).

    ``event.stem.conv`` becomes :func:`event_stem` of ``static.stem.conv`` (each ON/OFF channel the mean of the
    pretrained kernels); the classifier head ``head`` (a key prefix) keeps ``event``'s fresh initialisation; every
    other parameter and BN buffer is copied by the identity key map, shapes checked. Either model may be the SNN
    or the ANN twin. Returns what :func:`transfer_weights` copied (plus the stem conv's keys).

    Raises:
        ValueError: ``event``'s stem does not take ``channels`` channels, a model without a conv stem, or layers
            that do not correspond (naming the key and both shapes).
    """
    for arg, m in (("static", static), ("event", event)):
        if not isinstance(m, SpikingModel):
            raise TypeError(f"{arg} must be a spikelab model, got {type(m).__name__}")
    src_conv, dst_conv = _stem_conv(static, "static"), _stem_conv(event, "event")
    if event.in_shape[0] != channels:
        raise ValueError(f"event must take {channels}-channel event frames, but its stem takes "
                         f"{event.in_shape[0]} channels: build it with in_channels={channels}")
    stem_keys = tuple(f"stem.conv.{k}" for k in src_conv.state_dict())
    skip = (*stem_keys, f"{head}.*")
    copied = transfer_weights(static, event, src_only=skip, dst_only=skip)
    new = event_stem(src_conv, channels)
    transfer_weights(new, dst_conv)
    return {**{k: k for k in stem_keys}, **copied}


def finetune_events(
    model: SpikingModel,
    data: Any,
    config: TrainConfig | None = None,
    *,
    frozen_epochs: int,
    unfrozen_epochs: int = 0,
    trainable: Sequence[str] = ("stem.", "head.fc."),
    sequence_input: bool | None = None,
    **kwargs: Any,
) -> History:
    """pipe-D stage 4: train on event frames, first ``frozen_epochs`` epochs with only ``trainable`` (the new stem
    and head; name prefixes end in ``"."``) learning and the transferred body frozen, then ``unfrozen_epochs``
    with every parameter (0: never unfrozen). One run with phases ``"frozen body"`` and ``"unfrozen"``
    (:func:`~spikelab.training.fit_phases`; ``kwargs`` go there: ``run_dir``, ``callbacks``, overrides, ...).

    Raises:
        ValueError: static data (pipe-D trains on event sequences ``[B, T, 2, H, W]``), event frames whose T
            differs from ``model.T`` or whose channels differ from the model's, or no epoch at all.
    """
    if not isinstance(model, SpikingModel):
        raise TypeError(f"model must be a spikelab model, got {type(model).__name__}")
    kind = _data_kind(data, sequence_input)
    info = _info(data)
    if kind is False:
        raise ValueError("pipe-D fine-tunes on event sequences [B, T, 2, H, W], but the data are static images; "
                         "use pipe-S (finetune) for static data")
    shape = getattr(info, "input_shape", None)
    if shape is not None and len(shape) == 4:
        if shape[0] != model.T:
            raise ValueError(f"T mismatch: the event frames have T={shape[0]} steps but the model has T={model.T}; "
                             f"load the data with T={model.T} or set model.T = {shape[0]}")
        if shape[1] != model.in_shape[0]:
            raise ValueError(f"the event frames have {shape[1]} channels but the model takes {model.in_shape[0]}; "
                             "build it with to_event_model")
    check_int(frozen_epochs, "frozen_epochs", minimum=0)
    check_int(unfrozen_epochs, "unfrozen_epochs", minimum=0)
    phases = []
    if frozen_epochs:
        phases.append(Phase(epochs=frozen_epochs, trainable=tuple(trainable), name="frozen body"))
    if unfrozen_epochs:
        phases.append(Phase(epochs=unfrozen_epochs, name="unfrozen"))
    if not phases:
        raise ValueError("frozen_epochs + unfrozen_epochs must be >= 1")
    config = config if config is not None else TrainConfig()
    config = dataclasses.replace(config, epochs=sum(p.epochs for p in phases))
    return fit_phases(model, data, phases, config, sequence_input=sequence_input, **kwargs)
