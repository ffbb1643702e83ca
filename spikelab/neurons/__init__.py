"""Spiking neurons: functional steps (charge, fire, reset) and the modules that loop them over time."""
from spikelab.neurons.functional import (
    RESET_MODES,
    SequenceResult,
    charge,
    fire,
    neuron_sequence,
    neuron_step,
    reset,
)
from spikelab.neurons.modules import (
    IF,
    LIF,
    NEURON_KINDS,
    PLIF,
    PLIF_FORMS,
    BaseNeuron,
    NeuronConfig,
    decay_from_tau,
    tau_from_decay,
)

__all__ = [
    "RESET_MODES", "NEURON_KINDS", "SequenceResult", "charge", "fire", "reset", "neuron_step", "neuron_sequence",
    "BaseNeuron", "LIF", "IF", "PLIF", "PLIF_FORMS", "NeuronConfig", "decay_from_tau", "tau_from_decay",
]
