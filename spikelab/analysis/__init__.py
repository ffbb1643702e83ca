"""Analysis of spiking networks: gradient flow through depth and time, loss landscapes around trained weights."""
from spikelab.analysis.gradient_flow import gradient_flow
from spikelab.analysis.landscape import loss_along, loss_landscape_1d, loss_landscape_2d, random_direction

__all__ = ["gradient_flow", "random_direction", "loss_along", "loss_landscape_1d", "loss_landscape_2d"]
