"""Dual-stream networks (SPEC section 5): the pathway's removal leaves the FSNN bit-identical, the FSNN is full-spike
(every conv/linear input after the stem is binary, on real data), a step-by-step reference for the dual block, the
shared head and the two-term loss against the official formula, the operation counts per stream."""
from __future__ import annotations

import copy

import pytest
import torch
from _models_support import randomise_bn
from _support import require
from torch import nn
from torch.nn import functional as F

from spikelab import data, models
from spikelab.losses import auxiliary_outputs, multi_head_loss, sdt_loss, tet_loss
from spikelab.metrics import ops_table, ops_totals
from spikelab.models import DSNN_CONNECTS, DualStreamBlock, sew_function
from spikelab.neurons import NeuronConfig


@pytest.fixture(scope="module")
def digits_batches():
    """Two real batches of the embedded 8x8 digits (static) and one of their emulated events ([T, B, 2, 12, 12])."""
    train, _, _ = data.make_loaders("digits", batch_size=16, seed=0)
    it = iter(train)
    static = [next(it), next(it)]
    events, _, _ = data.make_loaders("digits-events", batch_size=8, seed=0, T=5)
    x, y = next(iter(events))
    return static, (x.transpose(0, 1).contiguous(), y)


@pytest.fixture(scope="module")
def fashion_batch():
    """One real Fashion-MNIST batch [16, 1, 28, 28] (Debian's dataset-fashion-mnist; required in CI)."""
    try:
        data.find_fashion_mnist()
    except FileNotFoundError:
        require(False, "needs Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    train, _, _ = data.make_loaders("fashion-mnist", batch_size=16, seed=0, limit=64)
    return next(iter(train))


def test_full_spike_and_pathway_identity_on_fashion_mnist(fashion_batch):
    x, _ = fashion_batch
    model = dsnn(widths=(4, 6, 8), stages=(2, 1, 1))
    calibrate_bn(model, [x])
    model.eval()
    twin = copy.deepcopy(model)
    _, spike = spike_head_logits(model, x)
    twin.pathway = False
    seen = _synaptic_inputs(twin, x)
    assert torch.equal(spike, twin(x))
    seen.pop("stem.conv.module")
    assert seen and all(_binary(t) for inputs in seen.values() for t in inputs)
    assert any(t.sum() > 0 for t in seen["head.fc.module"])


def dsnn(name="dsnn-small", in_channels=1, **kw):
    small = dict(widths=(6, 8, 12)) if name == "dsnn-small" else dict(widths=(4, 6, 8, 8), stages=(1, 2, 1, 1))
    return models.build(name, num_classes=10, in_channels=in_channels, T=3, **{**small, **kw})


def spike_head_logits(model, x):
    """The spike head's logits with the pathway on (collected as the auxiliary output)."""
    model.pathway = True
    with auxiliary_outputs(model) as aux:
        out = model(x)
    assert len(aux) == 1 and aux[0].shape == out.shape
    return out, aux[0]


@pytest.mark.parametrize("connect", DSNN_CONNECTS)
@pytest.mark.parametrize("train_mode", [False, True])
def test_removing_the_pathway_leaves_the_fsnn_bit_identical(digits_batches, connect, train_mode):
    g = torch.Generator().manual_seed(0)
    model = dsnn(connect=connect)
    randomise_bn(model, g)
    model.train(train_mode)
    twin = copy.deepcopy(model)  # train mode updates BN statistics: each path gets its own copy
    for x, _ in digits_batches[0]:
        _, spike = spike_head_logits(model, x)
        twin.pathway = False
        with auxiliary_outputs(twin) as aux:
            fsnn = twin(x)
        assert aux == []  # no pathway, no second head
        assert torch.equal(spike, fsnn)
        assert fsnn.abs().sum() > 0
    # the same on the ImageNet layout (7x7 stem + max pool), on emulated event frames
    x_ev, _ = digits_batches[1]
    big = dsnn("dsnn-resnet34", in_channels=2, connect=connect).train(train_mode)
    big_twin = copy.deepcopy(big)
    _, spike = spike_head_logits(big, x_ev)
    big_twin.pathway = False
    assert torch.equal(spike, big_twin(x_ev))


def calibrate_bn(model, batches):
    """Set every batch norm's running statistics to the cumulative mean over ``batches`` (train-mode passes)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)


def _synaptic_inputs(model, x):
    """{layer name: its input} for every conv and linear call of one forward pass."""
    seen: dict[str, list[torch.Tensor]] = {}
    handles = [m.register_forward_hook(lambda m, i, o, n=n: seen.setdefault(n, []).append(i[0].detach()))
               for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def _binary(t):
    return bool(((t == 0) | (t == 1)).all())


@pytest.mark.parametrize("connect", DSNN_CONNECTS)
def test_fsnn_feeds_only_spikes_to_every_layer_after_the_stem(digits_batches, connect):
    model = dsnn(connect=connect, pathway=False)
    calibrate_bn(model, [x for x, _ in digits_batches[0]])  # else an untrained net in eval mode barely spikes
    for train_mode in (True, False):
        model.train(train_mode)
        for x, _ in digits_batches[0]:
            seen = _synaptic_inputs(model, x)
            assert not _binary(seen.pop("stem.conv.module")[0])  # the stem sees the image
            assert len(seen) == 3 * 2 + 2 + 1  # two convs per block, two downsample convs, the spike head
            assert "head.fc_acc.module" not in seen and not any("acc_shortcut" in n for n in seen)
            for name, inputs in seen.items():
                assert all(_binary(t) for t in inputs), name
            assert any(t.sum() > 0 for t in seen["head.fc.module"])


def test_dsnn_mode_only_the_marked_pathway_sees_real_values(digits_batches):
    model = dsnn("dsnn-resnet18", stem="cifar", widths=(4, 6, 8, 8), stages=(1, 1, 1, 1))
    x, _ = digits_batches[0][0]
    with auxiliary_outputs(model):
        seen = _synaptic_inputs(model, x)
    real = sorted(n for n, inputs in seen.items() if not all(_binary(t) for t in inputs))
    expected = ["head.fc_acc.module", "stem.conv.module"]
    for stage in (2, 3, 4):
        expected += [f"body.layer{stage}.0.acc_shortcut.depthwise.module",
                     f"body.layer{stage}.0.acc_shortcut.pointwise.module"]
    assert real == sorted(expected)


def test_dual_block_matches_a_step_by_step_reference():
    """forward_dual against SPEC section 5 written out per time step with IF neurons (hard, detached reset)."""
    g = torch.Generator().manual_seed(4)
    act = NeuronConfig(kind="if", surrogate="sigmoid", detach_reset=True).build
    block = DualStreamBlock(3, 5, 2, act=act, connect="XOR").double().eval()
    randomise_bn(block, g)
    s = (torch.rand(4, 2, 3, 6, 6, generator=g) < 0.5).double()
    acc = torch.rand(4, 2, 3, 6, 6, generator=g, dtype=torch.float64) * 3

    def conv_bn(x, conv, bn, groups=1):
        c = conv.module
        y = F.conv2d(x, c.weight, None, c.stride, c.padding, groups=groups)
        return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    def if_loop(currents):
        v, out = torch.zeros_like(currents[0]), []
        for cur in currents:
            h = v + cur
            spike = (h >= 1.0).double()
            v = h * (1 - spike)
            out.append(spike)
        return out

    steps = list(s.unbind(0))
    a1 = if_loop([conv_bn(x, block.conv1, block.bn1) for x in steps])
    a = if_loop([conv_bn(x, block.conv2, block.bn2) for x in a1])
    short = if_loop([conv_bn(x, block.downsample[0], block.downsample[1]) for x in steps])
    sc = block.acc_shortcut
    acc_ref = []
    for t, x in enumerate(acc.unbind(0)):
        dw = F.conv2d(x, sc.depthwise.module.weight, None, 2, 1, groups=3)
        acc_ref.append(torch.relu(conv_bn(dw, sc.pointwise, sc.bn)) + a[t])
    s_out, acc_out = block.forward_dual(s, acc)
    xor = [sh * (1 - at) + at * (1 - sh) for at, sh in zip(a, short)]
    torch.testing.assert_close(s_out, torch.stack(xor))
    torch.testing.assert_close(acc_out, torch.stack(acc_ref))
    assert set(s_out.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(block(s), s_out)  # the spike stream alone is the SEW block


def test_shared_head_and_the_two_term_loss_match_the_official_formula(digits_batches):
    """L = CE(fc(mean_t avgpool(s)), y) + CE(fc(mean_t avgpool(acc)), y) with one fc (official dsnn.py)."""
    g = torch.Generator().manual_seed(1)
    model = dsnn().double().eval()
    randomise_bn(model, g)
    x, y = digits_batches[0][0]
    x = x.double()
    with auxiliary_outputs(model) as aux:
        out = model(x)
    loss = multi_head_loss(sdt_loss, out, aux, y)
    # streams by hand, through the blocks' own forward_dual
    s = model.body.sn(model.stem(x.unsqueeze(0)).expand(3, *x.shape[:1], 6, 8, 8))
    acc = s
    for block in model.blocks():
        s, acc = block.forward_dual(s, acc)
    fc = model.head.fc.module
    ce_s = F.cross_entropy(F.linear(s.mean(0).mean((-2, -1)), fc.weight, fc.bias), y)
    ce_acc = F.cross_entropy(F.linear(acc.mean(0).mean((-2, -1)), fc.weight, fc.bias), y)
    torch.testing.assert_close(loss, ce_s + ce_acc)
    # one set of head parameters, still shared after an optimiser step
    assert model.head.fc_acc.module.weight is fc.weight and model.head.fc_acc.module.bias is fc.bias
    n_head = sum(p.numel() for p in model.head.parameters())
    assert n_head == fc.weight.numel() + fc.bias.numel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    with auxiliary_outputs(model) as aux:
        out = model(x)
    multi_head_loss(lambda o, t: tet_loss(o, t, lam=0.05), out, aux, y).backward()
    opt.step()
    assert torch.equal(model.head.fc_acc.module.weight, model.head.fc.module.weight)


def test_ops_count_each_stream(digits_batches):
    """The pathway's convs and the accumulation head are MACs (closed form); the spike stream is ACs."""
    model = dsnn()  # widths 6, 8, 12 on 8x8 digits: layer2 4x4, layer3 2x2; T = 3
    x, _ = digits_batches[0][0]
    calibrate_bn(model, [x])
    rows = {r["layer"]: r for r in ops_table(model, x)}
    T = 3
    expect_macs = {
        "body.layer2.0.acc_shortcut.depthwise": T * 6 * 4 * 4 * 9,  # depthwise: one 3x3 filter per channel
        "body.layer2.0.acc_shortcut.pointwise": T * 8 * 4 * 4 * 6,
        "body.layer3.0.acc_shortcut.depthwise": T * 8 * 2 * 2 * 9,
        "body.layer3.0.acc_shortcut.pointwise": T * 12 * 2 * 2 * 8,
        "head.fc_acc": T * 10 * 12,
        "stem.conv": 6 * 8 * 8 * 9,  # once: the static input's stem runs one step
    }
    for name, macs in expect_macs.items():
        assert rows[name]["macs"] == macs and rows[name]["acs"] == 0, name
    spiking = [r for n, r in rows.items() if n not in expect_macs]
    assert spiking and all(r["macs"] == 0 for r in spiking)
    assert "head.fc" not in rows  # the DSNN predicts from the accumulation head alone
    model.pathway = False
    fsnn = {r["layer"]: r for r in ops_table(model, x)}
    assert not any("acc_shortcut" in n or n == "head.fc_acc" for n in fsnn)
    assert ops_totals(list(fsnn.values()))["macs"] == expect_macs["stem.conv"]
    fc = fsnn["head.fc"]  # the spike head: per position on binary input, ACs = ops * rate
    assert fc["macs"] == 0 and fc["input_rate"] > 0
    assert fc["acs"] == pytest.approx(T * 2 * 2 * 10 * 12 * fc["input_rate"])


def test_switch_and_join_errors():
    model = dsnn()
    with pytest.raises(TypeError, match="pathway must be a bool"):
        model.pathway = 1
    with pytest.raises(ValueError, match="connect must be one of 'IAND', 'AND', 'OR', 'XOR'; got 'ADD'"):
        dsnn(connect="ADD")
    with pytest.raises(ValueError, match="connect must be one of .*'XOR'; got 'NAND'"):
        sew_function(torch.zeros(1), torch.ones(1), "NAND")
    assert "pathway=True" in repr(model) and "connect='IAND'" in repr(model)


@pytest.mark.parametrize("name, stages, stem", [("dsnn-resnet18", (2, 2, 2, 2), "imagenet"),
                                                ("dsnn-resnet34", (3, 4, 6, 3), "imagenet"),
                                                ("dsnn-small", (1, 1, 1), "cifar")])
def test_registered_layouts(name, stages, stem):
    model = models.build(name, num_classes=10, in_channels=3, T=2, width=1 / 16)
    assert model.stages == stages and model.stem_kind == stem and model.pathway
    assert all(isinstance(m, models.DualStreamBlock) for m in model.blocks())
    shortcuts = [b.acc_shortcut for b in model.blocks() if b.acc_shortcut is not None]
    assert len(shortcuts) == len(stages) - 1  # one per stage change
    neurons = [m for _, m in model.neurons()]
    assert all(m.decay == 1.0 and m.detach_reset and m.surrogate.name == "sigmoid" for m in neurons)
    cifar = models.build(name, num_classes=10, in_channels=3, T=2, width=1 / 16, stem="cifar", pathway=False)
    assert cifar.stem.conv.module.kernel_size == (3, 3) and not cifar.pathway
