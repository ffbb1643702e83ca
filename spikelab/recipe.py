"""A run's recipe beyond its :class:`~spikelab.training.TrainConfig`: which model, on which data, with how many
time steps; and how ``spikelab train``, ``spikelab eval`` and the training panel build a run's data and model from
it. One set of defaults and one run-name format for every way of starting a run.

The ``run_config`` of such a run (stored in ``config.json`` and in every checkpoint, beside the TrainConfig fields)
holds the settings chosen (:data:`CHOSEN_KEYS`: ``model``, ``dataset`` (a registry name or an absolute folder
path), ``data_root`` (absolute, or None), ``limit``, ``augment``, ``size`` (``[H, W]`` resize of image folders, or
None), ``T``, ``batch_size``, ``drop_last`` (the training loader drops its last, partial batch, so that every step
averages the same number of samples), ``neuron`` (the spiking layers' neuron, :func:`neuron_to_recipe`), ``pathway``
(the dual-stream ``dsnn-*`` models: trained with the auxiliary accumulation pathway or not; None for every other
model)) and those derived from the data (:data:`DERIVED_KEYS`: ``num_classes``, ``input_shape`` of one sample
(``[C, H, W]``, or ``[T, 2, H, W]`` for events), ``is_event``, ``world_size``). A run written before a key existed
reads it as :data:`LEGACY` says (the behaviour it was trained with: ``neuron`` None is the model's default neuron).
A training panel's network broken on purpose also keeps ``preset`` (see
:func:`spikelab.analysis.doctor.apply_preset`), which :func:`build_model` applies.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = dict(model="conv-small", dataset="digits", T=4, epochs=30, batch_size=32, lr=1e-2,
                                optimizer="adam", schedule="cosine", loss="sdt", seed=0, drop_last=True)
CHOSEN_KEYS = ("model", "dataset", "data_root", "limit", "augment", "size", "T", "batch_size", "drop_last", "neuron",
               "pathway")
#: what a run written before a key existed was trained with (``neuron`` None: the model's default neuron;
#: ``pathway`` None: not a dual-stream model, or the pathway on, see :func:`build_model`)
LEGACY: dict[str, Any] = dict(size=None, drop_last=False, neuron=None, pathway=None)
WIDTH_KEY = "width"  # neuron_for's name for the surrogate's width parameter (alpha, slope, gamma or width)
DERIVED_KEYS = ("num_classes", "input_shape", "is_event", "world_size")
MODEL_KEYS = ("model", "T", "num_classes", "input_shape", "is_event")  # what building the network needs
INPUT_SIZE_MODELS = ("mlp", "conv-small", "vggsnn")  # models that take input_size=(H, W)


def is_dual_stream(model: str) -> bool:
    """Whether ``model`` is a dual-stream network whose recipe has a ``pathway`` setting (SPEC section 5)."""
    return str(model).startswith("dsnn")


def run_name(model: str, dataset: str) -> str:
    """The default run folder name: ``<model>-<dataset>-<YYYYmmdd-HHMMSS>`` (a dataset path by its last part)."""
    return f"{model}-{Path(str(dataset)).name}-{time.strftime('%Y%m%d-%H%M%S')}"


def resolve_dataset(dataset: str, data_root: str | None) -> tuple[str, str | None]:
    """``(dataset, data_root)`` with paths made absolute, so a run's recipe works from any directory."""
    from spikelab import data

    if dataset not in data.names():
        dataset = str(Path(dataset).expanduser().resolve())
    if data_root is not None:
        data_root = str(Path(data_root).expanduser().resolve())
    return dataset, data_root


def make_data(cfg: Mapping[str, Any], *, batch_size: int, seed: int, num_workers: int = 0, augment: bool | None = None,
              limit: Any = "recipe"):
    """``(train_loader, test_loader, info)`` of a recipe (:func:`spikelab.data.make_loaders`)."""
    from spikelab import data

    size = cfg.get("size")
    return data.make_loaders(
        cfg["dataset"], batch_size=batch_size, root=cfg.get("data_root"),
        augment=cfg.get("augment", False) if augment is None else augment, seed=seed, num_workers=num_workers,
        T=cfg["T"], limit=cfg.get("limit") if limit == "recipe" else limit,
        size=tuple(size) if size is not None else None, drop_last=bool(cfg.get("drop_last", LEGACY["drop_last"])))


def default_neuron(model: str):
    """The :class:`~spikelab.neurons.NeuronConfig` the registered model ``model`` builds its spiking layers with
    by default (read from a copy built on the ``meta`` device: no memory)."""
    import torch

    from spikelab import models

    kwargs = {"input_size": (8, 8)} if model in INPUT_SIZE_MODELS else {}
    with torch.device("meta"):
        return models.build(model, num_classes=2, in_channels=1, T=1, **kwargs).neuron_config


def neuron_for(model: str, **changes: Any):
    """The :class:`~spikelab.neurons.NeuronConfig` of ``model``'s spiking layers (:func:`default_neuron`) with
    ``changes``: any of its fields (``v_th=1.5``), ``surrogate`` as a name and ``width`` as the surrogate's width
    parameter (atan/sigmoid ``alpha``, fast_sigmoid ``slope``, triangle ``gamma``, rectangle ``width``; a new family
    without a width takes its own default). A bad value raises ``ValueError`` naming it."""
    from spikelab import surrogate as _surrogate
    from spikelab.neurons import NeuronConfig

    base = default_neuron(model)
    known = {f.name for f in dataclasses.fields(NeuronConfig)} | {WIDTH_KEY}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown neuron settings {unknown}; they are {sorted(known)}")
    sg = _surrogate.get(base.surrogate)
    family = _surrogate.get(changes.pop("surrogate", sg.name))
    width = changes.pop(WIDTH_KEY, getattr(sg, sg.width_param) if family.name == sg.name else None)
    surrogate = family if width is None else _surrogate.get(family.name, **{family.width_param: width})
    return dataclasses.replace(base, surrogate=surrogate, **changes)


def describe_neuron(recipe: Mapping[str, Any] | None, model: str | None = None) -> str:
    """A run's neuron in a few words, e.g. ``"LIF decay 0.5, v_th 1, hard reset; atan alpha=2"``: the recipe's
    (:func:`neuron_to_recipe`), or for None the default of ``model`` (``"model default"`` without one)."""
    if recipe is None:
        if model is None:
            return "model default"
        recipe = neuron_to_recipe(default_neuron(model))
    sg = recipe["surrogate"]
    params = ", ".join(f"{k}={v:g}" for k, v in sg.items() if k != "name")
    leak = "" if recipe["kind"] == "if" else f" decay {recipe['decay']:g},"
    return f"{recipe['kind'].upper()}{leak} v_th {recipe['v_th']:g}, {recipe['reset']} reset; {sg['name']} {params}"


def with_data(cfg: Mapping[str, Any], info: Any, *, world_size: int = 1) -> dict[str, Any]:
    """The recipe completed with what the data says (:data:`DERIVED_KEYS`); event data fixes ``T``."""
    out = dict(cfg, num_classes=info.num_classes, input_shape=list(info.input_shape), is_event=info.is_event,
               world_size=world_size)
    if info.is_event:
        out["T"] = info.input_shape[0]
    return out


def _int(cfg: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"the run setting {key} must be an int >= {minimum}, got {v!r}")
    return v


def check_model_settings(cfg: Mapping[str, Any]) -> None:
    """Check the settings a network is built from (:data:`MODEL_KEYS`), as read from a run: ``ValueError`` naming
    the first one missing or malformed."""
    from spikelab import models

    missing = [k for k in MODEL_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"the run settings lack {missing}")
    if cfg["model"] not in models.names():
        raise ValueError(f"the run's model {cfg['model']!r} is not one of {', '.join(models.names())}")
    _int(cfg, "T")
    _int(cfg, "num_classes")
    if not isinstance(cfg["is_event"], bool):
        raise ValueError(f"the run setting is_event must be true or false, got {cfg['is_event']!r}")
    if "preset" in cfg:
        from spikelab.analysis.doctor import PRESETS

        if cfg["preset"] not in PRESETS:
            raise ValueError(f"the run setting preset must be one of {', '.join(map(repr, PRESETS))}, "
                             f"got {cfg['preset']!r}")
    shape = cfg["input_shape"]
    rank = 4 if cfg["is_event"] else 3
    if not isinstance(shape, (list, tuple)) or len(shape) != rank or \
            any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"the run setting input_shape must be {rank} positive ints "
                         f"({'[T, 2, H, W]' if cfg['is_event'] else '[C, H, W]'}), got {shape!r}")
    if cfg.get("neuron") is not None:
        neuron_from_recipe(cfg["neuron"])


def neuron_to_recipe(neuron: Any) -> dict[str, Any]:
    """A :class:`~spikelab.neurons.NeuronConfig` as plain JSON: its fields, the surrogate as its name and parameters
    (``{"name": "atan", "alpha": 2.0}``)."""
    import dataclasses

    from spikelab import surrogate
    from spikelab.neurons import NeuronConfig

    if not isinstance(neuron, NeuronConfig):
        raise TypeError(f"neuron must be a spikelab.neurons.NeuronConfig, got {type(neuron).__name__}")
    sg = surrogate.get(neuron.surrogate)
    return {**dataclasses.asdict(neuron), "surrogate": {"name": sg.name, **sg.params}}


def neuron_from_recipe(d: Mapping[str, Any]) -> Any:
    """The :class:`~spikelab.neurons.NeuronConfig` that :func:`neuron_to_recipe` wrote (``ValueError`` if it is
    malformed)."""
    from spikelab import surrogate
    from spikelab.neurons import NeuronConfig

    try:
        fields = dict(d)
        sg = dict(fields.pop("surrogate"))
        return NeuronConfig(**fields, surrogate=surrogate.get(sg.pop("name"), **sg))
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"the run setting neuron is malformed ({err}): {d!r}") from None


def _build(cfg: Mapping[str, Any]):
    from spikelab import models

    kwargs: dict[str, Any] = {}
    if cfg.get("neuron") is not None:
        kwargs["neuron"] = neuron_from_recipe(cfg["neuron"])
    if cfg["model"] in INPUT_SIZE_MODELS:
        kwargs["input_size"] = tuple(cfg["input_shape"][-2:])
    if is_dual_stream(cfg["model"]):
        kwargs["pathway"] = cfg.get("pathway") is not False  # unset: the pathway is on (dual-stream training)
    in_channels = cfg["input_shape"][1] if cfg["is_event"] else cfg["input_shape"][0]
    return models.build(cfg["model"], num_classes=cfg["num_classes"], in_channels=in_channels, T=cfg["T"], **kwargs)


def build_model(cfg: Mapping[str, Any], state_dict: Mapping[str, Any] | None = None, *, source: Any = "the run"):
    """The network of a recipe; with ``state_dict``, loaded with those weights.

    The settings are checked first (:func:`check_model_settings`), and the weights against a copy of the network
    built on the ``meta`` device (no memory): a checkpoint whose settings do not match its weights, or that asks
    for an absurd input shape, is refused with a ``ValueError`` before anything large is allocated.
    """
    import torch

    from spikelab.training.resume import state_dict_mismatch

    try:
        check_model_settings(cfg)
    except ValueError as err:
        if source == "the run":
            raise
        raise ValueError(f"{source}: {err}") from None
    if state_dict is not None:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in _build(cfg).state_dict().items()}
        problem = state_dict_mismatch(expected, state_dict)
        if problem:
            shown = {k: cfg[k] for k in MODEL_KEYS}
            raise ValueError(f"the weights in {source} do not match its model settings {shown}: {problem}")
    model = _build(cfg)
    if cfg.get("preset", "healthy") != "healthy":  # a network broken on purpose (training panel): not in the weights
        from spikelab.analysis.doctor import apply_preset

        apply_preset(model, cfg["preset"])
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model
