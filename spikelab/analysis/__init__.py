"""Analysis of spiking networks: gradient flow through depth and time, loss landscapes around trained weights and
their sharpness (the top Hessian eigenvalue), a neuron's F-I curve, the cost and fidelity of input codes, what a
trained network does step by step, and a training doctor (:func:`diagnose`, and :class:`DoctorCallback` for
``fit``) that says why a network is not learning and what to try."""
from spikelab.analysis.coding import code_tradeoff
from spikelab.analysis.diagnose import KINDS, Finding, Thresholds, diagnose, format_findings
from spikelab.analysis.doctor import DoctorCallback, TrainingDoctorWarning, break_it, findings_of
from spikelab.analysis.gradient_flow import (
    FLOW_KEYS,
    WIDTH_RANGES,
    depth_ratio,
    flow_ratio,
    gradient_flow,
    gradient_norms,
    norms_matrix,
    width_sweep,
    width_sweeps,
)
from spikelab.analysis.landscape import loss_along, loss_landscape_1d, loss_landscape_2d, random_direction
from spikelab.analysis.network import LayerRecord, SampleRecord, accuracy_by_steps, predict, record_sample
from spikelab.analysis.neuron import fi_curve
from spikelab.analysis.sharpness import Sharpness, top_hessian_eigenvalue

__all__ = ["gradient_flow", "gradient_norms", "FLOW_KEYS", "norms_matrix", "depth_ratio", "random_direction",
           "loss_along", "loss_landscape_1d", "loss_landscape_2d", "Sharpness", "top_hessian_eigenvalue",
           "flow_ratio", "width_sweep", "width_sweeps", "WIDTH_RANGES", "fi_curve", "code_tradeoff", "predict",
           "accuracy_by_steps", "record_sample", "LayerRecord", "SampleRecord", "diagnose", "Finding", "Thresholds",
           "KINDS", "format_findings", "DoctorCallback", "TrainingDoctorWarning", "findings_of", "break_it"]
