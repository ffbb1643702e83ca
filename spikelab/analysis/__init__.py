"""Analysis of spiking networks: gradient flow through depth and time, loss landscapes around trained weights, and a
training doctor (:func:`diagnose`, and :class:`DoctorCallback` for ``fit``) that says why a network is not learning
and what to try."""
from spikelab.analysis.diagnose import KINDS, Finding, Thresholds, diagnose, format_findings
from spikelab.analysis.doctor import DoctorCallback, TrainingDoctorWarning, break_it, findings_of
from spikelab.analysis.gradient_flow import gradient_flow
from spikelab.analysis.landscape import loss_along, loss_landscape_1d, loss_landscape_2d, random_direction

__all__ = ["gradient_flow", "random_direction", "loss_along", "loss_landscape_1d", "loss_landscape_2d", "diagnose",
           "Finding", "Thresholds", "KINDS", "format_findings", "DoctorCallback", "TrainingDoctorWarning",
           "findings_of", "break_it"]
