"""Auxiliary heads in training (SPEC section 5): fit and evaluate apply the loss to every head a model hands over
through ``auxiliary_outputs`` (a DSNN's spike head), and to the prediction alone for every other model."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikelab import models
from spikelab.losses import auxiliary_outputs, multi_head_loss, sdt_loss, tet_loss
from spikelab.training import evaluate, fit

QUIET = dict(progress=False, device="cpu")


def _digits_like(n: int = 32, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True), DataLoader(TensorDataset(x, y), batch_size=16)


def _dsnn(pathway: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return models.build("dsnn-small", num_classes=4, in_channels=1, T=2, widths=(4, 6, 8), pathway=pathway)


class Recorder:
    """A loss that records every call's value per optimiser step (SDT or TET)."""

    def __init__(self, base) -> None:
        self.base, self.calls = base, []
        self.__name__ = "recorded"

    def __call__(self, outputs, targets):
        value = self.base(outputs, targets)
        self.calls.append(float(value.detach()))
        return value


@pytest.mark.parametrize("base", [sdt_loss, lambda o, t: tet_loss(o, t, lam=0.05)], ids=["sdt", "tet"])
def test_fit_sums_the_loss_over_every_head(base):
    train, _ = _digits_like()
    dual = Recorder(base)
    h = fit(_dsnn(), train, epochs=1, loss=dual, **QUIET)
    assert len(dual.calls) == 2 * len(h.steps)  # prediction + the spike head, every step
    for step, (a, b) in zip(h.steps, zip(dual.calls[::2], dual.calls[1::2])):
        assert step["loss"] == pytest.approx(a + b, rel=1e-6)
    single = Recorder(base)
    h = fit(_dsnn(pathway=False), train, epochs=1, loss=single, **QUIET)  # the FSNN alone: one head
    assert len(single.calls) == len(h.steps)
    plain = Recorder(base)
    torch.manual_seed(0)
    conv = models.build("conv-small", num_classes=4, in_channels=1, T=2, channels=(4, 4))
    h = fit(conv, train, epochs=1, loss=plain, **QUIET)  # a model without auxiliary heads: unchanged
    assert len(plain.calls) == len(h.steps)


def test_evaluate_reports_the_two_term_loss_and_the_prediction_heads_accuracy():
    train, test = _digits_like()
    model = _dsnn()
    fit(model, train, epochs=1, **QUIET)
    res = evaluate(model, test, **QUIET)
    x, y = test.dataset.tensors
    model.eval()
    with torch.no_grad(), auxiliary_outputs(model) as aux:
        out = model(x)
        expect = (sdt_loss(out, y) + sdt_loss(aux[0], y)).item()
    assert res["loss"] == pytest.approx(expect, rel=1e-5)
    assert res["acc"] == pytest.approx((out.mean(0).argmax(1) == y).float().mean().item())


def test_auxiliary_outputs_is_scoped_and_empty_for_one_head_models():
    model = _dsnn()
    x = torch.rand(3, 1, 8, 8)
    assert model.aux_sink is None
    with pytest.raises(RuntimeError, match="boom"), auxiliary_outputs(model) as aux:
        model(x)
        assert len(aux) == 1
        raise RuntimeError("boom")
    assert model.aux_sink is None  # reset even when the block fails
    model(x)  # outside a block nothing is collected or kept
    assert model.aux_sink is None
    plain = nn.Linear(2, 2)
    with auxiliary_outputs(plain) as aux:
        plain(torch.rand(1, 2))
    assert aux == []
    out = torch.randn(2, 3, 4)
    y = torch.tensor([0, 1, 2])
    assert torch.equal(multi_head_loss(sdt_loss, out, [], y), sdt_loss(out, y))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        with auxiliary_outputs("model"):
            pass
