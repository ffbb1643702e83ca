"""Batch norm over time in every path (SPEC section 3): the static-input shortcut against the repeated sequence in
outputs and running statistics, a batch of one, tdBN's own errors, and errors of wrapped modules reported in the
caller's [T, B, ...] shapes."""
import copy

import pytest
import torch
from torch import nn

from spikelab.encoding import direct
from spikelab.layers import SeqToANN, StaticStem, TdBatchNorm, repeated_steps
from spikelab.neurons import LIF


def _stems(kind: str, momentum):
    torch.manual_seed(0)
    if kind == "conv":
        stem = nn.Sequential(SeqToANN(nn.Conv2d(2, 4, 3, padding=1)), TdBatchNorm(4, momentum=momentum))
    else:
        stem = nn.Sequential(SeqToANN(nn.Linear(6, 5)), TdBatchNorm(5, momentum=momentum))
    return stem.double(), copy.deepcopy(stem).double()


def _input(kind: str, B: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(B)
    shape = (B, 2, 5, 5) if kind == "conv" else (B, 6)
    return torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 0.5


@pytest.mark.parametrize("kind", ["conv", "linear"])
@pytest.mark.parametrize("B", [4, 1])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_static_stem_equals_the_sequence_in_outputs_and_running_statistics(kind, B, momentum):
    # the running variance used to differ (Bessel's correction over B instead of T*B values), and a static batch
    # of one raised "Expected more than 1 value per channel" where the sequence ran
    T = 3
    once, full = _stems(kind, momentum)
    for step in range(3):  # several updates: the running statistics accumulate
        x = _input(kind, B + step).requires_grad_()
        y_once = StaticStem(once, T)(x)
        y_full = full(direct(x, T))
        torch.testing.assert_close(y_once, y_full)
        w = torch.randn_like(y_once)
        (g_once,) = torch.autograd.grad((y_once * w).sum(), x)
        (g_full,) = torch.autograd.grad((y_full * w).sum(), x)
        torch.testing.assert_close(g_once, g_full)
    for (name, a), (_, b) in zip(once.state_dict().items(), full.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    once.eval(), full.eval()
    x = _input(kind, 2)
    torch.testing.assert_close(StaticStem(once, T)(x), full(direct(x, T)))


def test_running_variance_is_unbiased_over_time_batch_and_space():
    bn = TdBatchNorm(2, momentum=1.0).double()
    x = torch.randn(1, 3, 2, 2, 2, dtype=torch.float64)
    StaticStem(bn, 5)(x[0])  # stands for 5 identical steps: n = 5 * 3 * 2 * 2 values per channel
    values = direct(x[0], 5).transpose(0, 2).reshape(2, -1)
    torch.testing.assert_close(bn.running_mean, values.mean(1))
    torch.testing.assert_close(bn.running_var, values.var(1, unbiased=True))


def test_a_single_value_per_channel_is_a_clear_error_in_training_only():
    bn = TdBatchNorm(4)
    with pytest.raises(ValueError, match=r"more than one value per channel.*shape \[1, 1, 4\].*B = 1"):
        bn(torch.randn(1, 1, 4))  # torch would report the merged [T*B, C] = [1, 4]
    with pytest.raises(ValueError, match=r"shape \[1, 1, 4\] \(T = 1, B = 1"):
        StaticStem(nn.Sequential(SeqToANN(nn.Linear(3, 4)), bn), 1)(torch.randn(1, 3))
    assert bn(torch.randn(2, 1, 4)).shape == (2, 1, 4)  # T = 2 steps of one sample: two values
    bn.eval()
    assert bn(torch.randn(1, 1, 4)).shape == (1, 1, 4)


def test_repeated_steps_nests_and_restores():
    inner, outer = TdBatchNorm(2), TdBatchNorm(2)
    net = nn.Sequential(outer, inner)
    with repeated_steps(net, 3):
        with repeated_steps(inner, 2):
            assert (outer._repeat, inner._repeat) == (3, 6)
        assert inner._repeat == 3
    assert (outer._repeat, inner._repeat) == (1, 1)


def test_static_stem_refuses_what_it_cannot_repeat():
    with pytest.raises(TypeError, match="spiking neuron.*stateless"):
        StaticStem(nn.Sequential(SeqToANN(nn.Linear(3, 4)), LIF()), 2)
    with pytest.raises(TypeError, match="BatchNorm1d: use TdBatchNorm"):
        StaticStem(SeqToANN(nn.Linear(3, 4), nn.BatchNorm1d(4)), 2)


def test_seq_to_ann_reports_channel_mismatches_in_the_callers_shape():
    conv = SeqToANN(nn.Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match=r"3 channels at dimension 2.*got shape \[4, 2, 1, 8, 8\]"):
        conv(torch.rand(4, 2, 1, 8, 8))  # torch would say: expected input[8, 1, 8, 8] to have 3 channels
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\] \(5 dimensions\).*\[4, 3, 8, 8\]"):
        conv(torch.rand(4, 3, 8, 8))  # would have run as one unbatched image per step, silently
    with pytest.raises(ValueError, match=r"5 features in its last dimension.*\[2, 3, 4\]"):
        SeqToANN(nn.Linear(5, 2))(torch.rand(2, 3, 4))
    pool = SeqToANN(nn.Conv2d(3, 4, 3), nn.MaxPool2d(8))  # the pool's window is larger than the conv's output
    with pytest.raises(RuntimeError, match=r"failed on x_seq of shape \[2, 5, 3, 8, 8\] \(T = 2, B = 5\).*"
                                           r"T\*B = 10, shape \[10, 3, 8, 8\]"):
        pool(torch.rand(2, 5, 3, 8, 8))


def test_static_stem_reports_errors_with_the_static_shape():
    stem = StaticStem(SeqToANN(nn.Conv2d(3, 4, 3)), T=5)
    with pytest.raises(ValueError, match=r"static batch x of shape \[2, 1, 8, 8\], as a one-step sequence "
                                         r"\[1, 2, 1, 8, 8\].*3 channels at dimension 2"):
        stem(torch.rand(2, 1, 8, 8))


def test_time_distributed_layers_take_real_floating_point_input():
    x = torch.ones(2, 3, 4, dtype=torch.int64)
    for layer in (SeqToANN(nn.Linear(4, 2)), TdBatchNorm(3), StaticStem(SeqToANN(nn.Linear(3, 4)), 2)):
        with pytest.raises(TypeError, match="must be a real floating-point tensor"):
            layer(x if not isinstance(layer, StaticStem) else x[0])


def test_tdbn_settings_are_checked():
    with pytest.raises(ValueError, match="momentum"):
        TdBatchNorm(3, momentum=float("nan"))
    with pytest.raises(ValueError, match="momentum"):
        TdBatchNorm(3, momentum=1.5)
    with pytest.raises(TypeError, match="sync"):
        TdBatchNorm(3, sync=1)
    assert TdBatchNorm(3, momentum=None).momentum is None
