"""Analysis of spiking networks: gradient flow through depth and time."""
from spikelab.analysis.gradient_flow import gradient_flow

__all__ = ["gradient_flow"]
