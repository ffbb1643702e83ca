"""The gradient-flow probe on any model (SPEC section 2): per-layer, per-step norms against retain_grad and
.backward(), surrogate swaps, checkpoints, the tidy table, and its errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikelab import models, surrogate
from spikelab.analysis import FLOW_KEYS, depth_ratio, gradient_norms, norms_matrix
from spikelab.layers import SeqToANN, StaticStem
from spikelab.losses import auxiliary_outputs, multi_head_loss, sdt_loss
from spikelab.neurons import LIF
from spikelab.training import fit


class TwoLayer(nn.Module):
    """stem Linear -> LIF -> Linear -> LIF -> readout; the forward keeps each layer's spikes for the oracle."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = StaticStem(SeqToANN(nn.Linear(6, 12)), T=4)
        self.sn1, self.fc, self.sn2 = LIF(surrogate="atan"), SeqToANN(nn.Linear(12, 8)), LIF(surrogate="atan")
        self.head = SeqToANN(nn.Linear(8, 3))
        self.kept: list[torch.Tensor] = []

    def forward(self, x):
        s1 = self.sn1(self.stem(x) * 3)
        s2 = self.sn2(self.fc(s1) * 3)
        self.kept = [s1, s2]
        for s in self.kept:
            s.retain_grad()
        return self.head(s2)


def _batch(n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_norms_match_retain_grad_and_backward():
    torch.manual_seed(0)
    net = TwoLayer()
    x, y = _batch()
    rows = gradient_norms(net, x, y)
    assert all(tuple(r) == FLOW_KEYS for r in rows)
    assert net.stem.module.module.weight.grad is None  # the probe leaves .grad alone
    sdt_loss(net(x), y).backward()  # the oracle: autograd's own gradients
    names, g = norms_matrix(rows)
    assert names == ["sn1", "sn2"] and g.shape == (2, 4)
    for depth, s in enumerate(net.kept):
        want = s.grad.pow(2).flatten(1).sum(1).sqrt().numpy()
        np.testing.assert_allclose(g[depth], want, rtol=1e-6)
    weights = {r["layer"]: r["grad_norm"] for r in rows if r["kind"] == "weight"}
    assert weights["fc.module"] == pytest.approx(float(net.fc.module.weight.grad.norm()), rel=1e-6)
    assert weights["stem.module.module"] == pytest.approx(float(net.stem.module.module.weight.grad.norm()), rel=1e-6)
    per_layer = np.sqrt((g ** 2).sum(1))
    assert depth_ratio(rows) == pytest.approx(per_layer[0] / per_layer[1])


def test_any_model_surrogate_swap_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = models.build("sew-resnet18", num_classes=5, in_channels=1, T=3, widths=(4, 4, 8, 8),
                         stages=(1, 1, 1, 1), stem="cifar")
    model.eval()
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 5, (6,))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    own = gradient_norms(model, x, y, weights=False)
    names, g = norms_matrix(own)
    assert names == [n for n, _ in model.neurons()]  # forward order is registration order here
    assert g.shape == (len(names), 3) and (g[-1] > 0).all()
    wide = gradient_norms(model, x, y, surrogate=surrogate.get("triangle", gamma=3.0), weights=False)
    narrow = gradient_norms(model, x, y, surrogate=surrogate.get("triangle", gamma=0.3), weights=False)
    assert depth_ratio(wide) < depth_ratio(own) < depth_ratio(narrow)  # TET's triangle is gamma = 1
    assert all(m.surrogate == surrogate.get("triangle") for _, m in model.neurons())
    assert not model.training
    # train=True ran batch norm on batch statistics, but the running statistics were restored
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_checkpoint_is_loaded_and_dsnn_heads_all_count(tmp_path):
    torch.manual_seed(0)
    build = lambda: models.build("dsnn-small", num_classes=3, in_channels=1, T=2, widths=(4, 4, 4))  # noqa: E731
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(24, 1, 8, 8, generator=g), torch.randint(0, 3, (24,), generator=g)
    trained = build()
    fit(trained, DataLoader(TensorDataset(x, y), batch_size=8), epochs=1, run_dir=tmp_path / "run",
        progress=False, device="cpu")
    fresh = build()
    rows = gradient_norms(fresh, x[:8], y[:8], checkpoint=tmp_path / "run")
    assert rows == gradient_norms(trained, x[:8], y[:8])
    # the loss is the two-term training loss: the stem's weight gradient equals the one of that loss
    trained.train()
    trained.zero_grad(set_to_none=True)  # fit leaves the last step's gradients
    with auxiliary_outputs(trained) as aux:
        loss = multi_head_loss(sdt_loss, trained(x[:8]), aux, y[:8])
    loss.backward()
    stem = [r for r in rows if r["kind"] == "weight" and r["layer"] == "stem.conv.module"][0]
    assert stem["grad_norm"] == pytest.approx(float(trained.stem.conv.module.weight.grad.norm()), rel=1e-6)


def test_errors():
    ann = models.build("conv-small", num_classes=3, in_channels=1, T=2, spiking=False)
    x, y = torch.rand(4, 1, 8, 8), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match="has no spiking layers"):
        gradient_norms(ann, x, y)
    with pytest.raises(ValueError, match="loss must be one of 'sdt', 'tet'"):
        gradient_norms(TwoLayer(), *_batch(), loss="mse")
    with pytest.raises(ValueError, match="no kind='spikes'"):
        norms_matrix([])
    rows = [dict(kind="spikes", layer="a", depth=0, t=0, grad_norm=1.0),
            dict(kind="spikes", layer="b", depth=1, t=0, grad_norm=0.0)]
    assert depth_ratio(rows) == math.inf
