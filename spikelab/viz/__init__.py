"""Plotly figures for spikelab: pure builders (``figures``) and static export (``export``).

Importing this package never imports ipywidgets; interactive panels live in ``spikelab.viz.widgets``.
"""
from spikelab.viz.export import save_figure
from spikelab.viz.figures import (
    accuracy_energy_figure,
    accuracy_by_steps_figure,
    code_tradeoff_figure,
    confusion_figure,
    convergence_figure,
    depth_ratio_figure,
    curves_figure,
    encoding_figure,
    energy_compare_figure,
    event_frames_figure,
    events_scatter_figure,
    firing_rate_figure,
    fi_curve_figure,
    firing_rate_time_figure,
    gradient_heatmap,
    landscape_1d_figure,
    landscape_2d_figure,
    membrane_figure,
    ops_table_figure,
    per_step_figure,
    raster_figure,
    spike_count_figure,
    surrogate_figure,
    surrogate_trace_figure,
    width_sweep_figure,
)

__all__ = [
    "confusion_figure", "curves_figure", "encoding_figure", "event_frames_figure", "events_scatter_figure",
    "firing_rate_figure", "firing_rate_time_figure", "gradient_heatmap", "landscape_1d_figure",
    "landscape_2d_figure", "membrane_figure", "ops_table_figure", "raster_figure", "surrogate_figure",
    "save_figure", "accuracy_by_steps_figure", "code_tradeoff_figure", "energy_compare_figure", "fi_curve_figure",
    "per_step_figure", "spike_count_figure", "width_sweep_figure", "surrogate_trace_figure",
    "depth_ratio_figure", "convergence_figure", "accuracy_energy_figure",
]
