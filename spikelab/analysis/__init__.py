"""Analysis of spiking networks: gradient flow through depth and time, loss landscapes around trained weights,
a neuron's F-I curve, the cost and fidelity of input codes, what a trained network does step by step, and a
training doctor (:func:`diagnose`, and :class:`DoctorCallback` for ``fit``) that says why a network is not learning
and what to try."""
from spikelab.analysis.coding import code_tradeoff
from spikelab.analysis.diagnose import KINDS, Finding, Thresholds, diagnose, format_findings
from spikelab.analysis.doctor import DoctorCallback, TrainingDoctorWarning, break_it, findings_of
from spikelab.analysis.gradient_flow import WIDTH_RANGES, flow_ratio, gradient_flow, width_sweep, width_sweeps
from spikelab.analysis.landscape import loss_along, loss_landscape_1d, loss_landscape_2d, random_direction
from spikelab.analysis.network import LayerRecord, SampleRecord, accuracy_by_steps, predict, record_sample
from spikelab.analysis.neuron import fi_curve

__all__ = ["gradient_flow", "random_direction", "loss_along", "loss_landscape_1d", "loss_landscape_2d",
           "flow_ratio", "width_sweep", "width_sweeps", "WIDTH_RANGES", "fi_curve", "code_tradeoff", "predict",
           "accuracy_by_steps", "record_sample", "LayerRecord", "SampleRecord", "diagnose", "Finding", "Thresholds",
           "KINDS", "format_findings", "DoctorCallback", "TrainingDoctorWarning", "findings_of", "break_it"]
