"""Analysis of spiking networks: gradient flow through depth and time, loss landscapes around trained weights and
their sharpness (the top Hessian eigenvalue)."""
from spikelab.analysis.gradient_flow import (
    FLOW_KEYS,
    depth_ratio,
    gradient_flow,
    gradient_norms,
    norms_matrix,
)
from spikelab.analysis.landscape import loss_along, loss_landscape_1d, loss_landscape_2d, random_direction
from spikelab.analysis.sharpness import Sharpness, top_hessian_eigenvalue

__all__ = ["gradient_flow", "gradient_norms", "FLOW_KEYS", "norms_matrix", "depth_ratio", "random_direction", "loss_along",
           "loss_landscape_1d", "loss_landscape_2d", "Sharpness", "top_hessian_eigenvalue"]
