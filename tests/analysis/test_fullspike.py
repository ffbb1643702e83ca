"""Lab 10's four networks: the FSNN multiplies only in its stem (every later layer gets spikes: oracle, the
counting rule of SPEC section 5), the DSNN adds the pathway's MACs, ADD joins make later convs multiply, the ANN
only multiplies; the join tables are the logic gates of SPEC section 5 written out by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikelab import data, exercises
from spikelab.analysis.fullspike import NETWORKS, full_spike_networks, network_operations
from spikelab.viz import figures
from spikelab.viz._fullspike import join_table

HAND = {"ADD": [[0, 1], [1, 2]], "IAND": [[0, 1], [0, 0]], "AND": [[0, 0], [0, 1]], "OR": [[0, 1], [1, 1]],
        "XOR": [[0, 1], [1, 0]]}  # rows a = 0, 1; columns s = 0, 1


@pytest.mark.parametrize("connect", list(HAND))
def test_join_tables_are_the_gates(connect):
    assert join_table(connect).tolist() == HAND[connect]


def test_join_figure_and_check():
    fig = figures.join_table_figure()
    assert [tr.name for tr in fig.data] == list(HAND) and np.asarray(fig.data[0].z).tolist() == HAND["ADD"]
    assert exercises.check_join_table([0, 1, 1, 0], connect="XOR").correct
    v = exercises.check_join_table([0, 1, 1, 1], connect="XOR")
    assert v.status == "wrong" and "(1, 1)" in v.message
    assert exercises.check_join_table([0, 1, 0, 0], connect="IAND").correct
    assert exercises.check_join_table([0, 1], connect="IAND").status == "wrong"
    assert exercises.check_join_table("", connect="IAND").status == "pending"


def test_where_each_network_multiplies():
    torch.set_num_threads(1)
    nets = full_spike_networks(num_classes=10, in_channels=1, T=4)
    assert list(nets) == list(NETWORKS) and nets["FSNN"][0] is nets["DSNN"][0]
    dsnn = nets["DSNN"][0]
    dsnn.pathway = True
    test = data.load("digits", split="test", limit=16)
    rows = network_operations(nets, torch.stack([test[i][0] for i in range(len(test))]))
    assert dsnn.pathway is True  # left as it was
    mac_layers = {k: [r["layer"] for r in v if r["macs"] > 0] for k, v in rows.items()}
    assert mac_layers["FSNN"] == ["stem.conv"]  # binary input everywhere after the stem
    assert set(mac_layers["DSNN"]) - {"stem.conv"} and all(
        "acc_shortcut" in n or n == "head.fc_acc" for n in mac_layers["DSNN"] if n != "stem.conv")
    # ADD: a spike count (2 where block and shortcut both fire) reaches the next block's convs, which multiply
    sew = [n for n in mac_layers["SEW-ResNet (ADD)"] if n != "stem.conv"]
    assert sew and all(n.startswith(("body.layer2.", "body.layer3.", "head.")) for n in sew), sew
    ann = rows["ANN"]
    assert all(r["acs"] == 0 for r in ann) and all(r["macs"] > 0 for r in ann)
    with pytest.raises(TypeError, match="dual-stream"):
        full_spike_networks(num_classes=10, in_channels=1, dsnn=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="connect"):
        full_spike_networks(num_classes=10, in_channels=1, connect="ADD")
