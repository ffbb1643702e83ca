"""spikelab: an interactive teaching lab for training spiking neural networks on PyTorch.

``spikelab.data``, ``spikelab.training``, ``spikelab.metrics`` and ``spikelab.analysis`` are imported on demand.
The computational core imports no UI library; figures live in :mod:`spikelab.viz` and widget panels in
:mod:`spikelab.viz.widgets`.
"""
from spikelab import encoding, layers, losses, models, neurons, surrogate
from spikelab.history import History

__version__ = "0.1.0"

__all__ = ["__version__", "encoding", "layers", "losses", "models", "neurons", "surrogate", "History"]
