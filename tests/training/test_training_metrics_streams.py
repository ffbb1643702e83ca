"""count_as_macs: a layer of a non-spike pathway counts MACs even on a binary batch (SPEC section 5)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikelab.layers import SeqToANN
from spikelab.metrics import count_as_macs, ops_table


def test_marked_layers_count_macs_whatever_their_input():
    spikes = (torch.rand(3, 2, 6) < 0.4).float()  # [T, B, N], binary
    fc = SeqToANN(nn.Linear(6, 5))
    (row,) = ops_table(fc, spikes, batch_size=2)
    assert row["macs"] == 0 and row["acs"] == pytest.approx(spikes.sum().item() * 5 / 2)
    assert count_as_macs(fc) is fc
    (row,) = ops_table(fc, spikes, batch_size=2)
    assert row["acs"] == 0 and row["macs"] == 3 * 5 * 6 and row["input_rate"] is None
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1))
    count_as_macs(conv)
    rows = ops_table(conv, torch.ones(1, 1, 4, 4))
    assert [r["macs"] for r in rows] == [2 * 2 * 2 * 9, 2 * 2 * 2 * 2] and all(r["acs"] == 0 for r in rows)
    with pytest.raises(TypeError, match="module must be an nn.Module"):
        count_as_macs("fc")
