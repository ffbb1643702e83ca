"""Encoders and time-distributed layers against direct formulas and per-step loops."""
import math

import pytest
import torch
from torch import nn

from spikelab.encoding import direct, latency, rate
from spikelab.layers import SeqToANN, StaticStem, TdBatchNorm


def test_direct_repeats():
    x = torch.rand(3, 1, 4, 4)
    s = direct(x, 5)
    assert s.shape == (5, 3, 1, 4, 4)
    for t in range(5):
        assert torch.equal(s[t], x)


def test_rate_mean_matches_probability_and_is_seeded():
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    s = rate(x, 4000, gain=0.8, generator=torch.Generator().manual_seed(0))
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(s.mean(0), 0.8 * x, atol=0.03, rtol=0)
    s2 = rate(x, 4000, gain=0.8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, s2)


def test_latency_one_spike_earlier_for_larger():
    x = torch.tensor([[1.0, 0.5, 0.0, 0.2]])
    s = latency(x, 5)
    assert s.sum(0).tolist() == [[1.0, 1.0, 0.0, 1.0]]  # 0 is at or below the threshold: silent
    first = s.argmax(0)[0].tolist()
    assert first[0] == 0 and first[1] == 2 and first[3] == 3  # round((1 - x) * 4)
    s_log = latency(x, 50, method="log", threshold=0.1, tau=20.0)
    t_log = s_log.argmax(0)[0]
    assert t_log[0] < t_log[1] < t_log[3]
    assert t_log[0] == round(20.0 * torch.log(torch.tensor(1.0 / 0.9)).item())


def test_encoder_errors():
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        rate(torch.tensor([1.5]), 3)
    with pytest.raises(ValueError, match="T must be >= 1"):
        direct(torch.rand(2), 0)
    with pytest.raises(TypeError, match="T must be an int"):
        rate(torch.rand(2), 2.0)
    with pytest.raises(ValueError, match="gain"):
        rate(torch.rand(2), 3, gain=0.0)
    with pytest.raises(ValueError, match="'linear', 'log'"):
        latency(torch.rand(2), 3, method="exp")


def test_seq_to_ann_equals_per_step_loop():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(4, 5, 2, 6, 6)
    y = SeqToANN(conv)(x)
    assert y.shape == (4, 5, 3, 6, 6)
    torch.testing.assert_close(y, torch.stack([conv(x[t]) for t in range(4)]))
    with pytest.raises(TypeError, match="modules"):
        SeqToANN(lambda v: v)


def test_tdbn_statistics_over_time_and_batch():
    bn = TdBatchNorm(3, v_th=0.5, alpha=2.0)
    assert torch.equal(bn.weight.detach(), torch.full((3,), 1.0))  # alpha * v_th
    x = torch.randn(4, 6, 3, 5, 5) * 3 + 2
    y = bn(x)
    merged = x.transpose(0, 2).reshape(3, -1)  # channel-wise over T, B, H, W
    mean = merged.mean(1)
    var = merged.var(1, unbiased=False)
    want = (x - mean.view(1, 1, 3, 1, 1)) / torch.sqrt(var.view(1, 1, 3, 1, 1) + bn.eps)
    torch.testing.assert_close(y, want, atol=1e-4, rtol=1e-4)
    assert bn(torch.randn(2, 3, 3)).shape == (2, 3, 3)  # [T, B, C] works too
    with pytest.raises(ValueError, match="3 channels"):
        bn(torch.randn(2, 3, 4, 5, 5))
    assert set(bn.state_dict()) == set(nn.BatchNorm2d(3).state_dict())


def test_static_stem_equals_repeated_input():
    torch.manual_seed(0)
    stem_a = nn.Sequential(SeqToANN(nn.Conv2d(1, 4, 3, padding=1)), TdBatchNorm(4))
    stem_b = nn.Sequential(SeqToANN(nn.Conv2d(1, 4, 3, padding=1)), TdBatchNorm(4))
    stem_b.load_state_dict(stem_a.state_dict())
    x = torch.rand(5, 1, 8, 8, requires_grad=True)
    once = StaticStem(stem_a, T=3)(x)
    full = stem_b(direct(x, 3))
    torch.testing.assert_close(once, full, atol=1e-5, rtol=1e-5)
    # the same gradient reaches the stem's weights
    w = torch.randn_like(once)
    (once * w).sum().backward()
    (full * w).sum().backward()
    torch.testing.assert_close(stem_a[0].module.weight.grad, stem_b[0].module.weight.grad, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="static batch"):
        StaticStem(stem_a, 3)(torch.rand(4))


@pytest.mark.parametrize("encode", [lambda x: rate(x, 3), lambda x: latency(x, 3)], ids=["rate", "latency"])
def test_nan_input_is_refused(encode):
    # rate(tensor([0.5, nan])) used to pass the [0, 1] check (NaN < 0 and NaN > 1 are both False) and never spike
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*1 NaN value"):
        encode(torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match=r"got range \[-0.5, 0.5\]"):
        encode(torch.tensor([0.5, -0.5]))


def test_rate_is_unbiased_for_low_precision_input():
    # float16 x = 0.001 used to fire 12 standard errors too often: the uniform draws were made in float16
    n = 2_000_000
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.full((n,), 0.001, dtype=dtype)
        p = float(x[0].double())  # the probability the input holds
        s = rate(x, 1, generator=torch.Generator().manual_seed(1))[0]
        assert s.dtype == dtype
        z = (s.double().mean().item() - p) / math.sqrt(p * (1 - p) / n)
        assert abs(z) < 4, (dtype, z)


def test_rate_spikes_do_not_depend_on_the_input_dtype():
    x16 = torch.rand(5, 7, generator=torch.Generator().manual_seed(2)).half()
    runs = [rate(x16.to(dt), 50, gain=0.7, generator=torch.Generator().manual_seed(3))
            for dt in (torch.float16, torch.float32, torch.float64)]
    assert all(torch.equal(r.double(), runs[0].double()) for r in runs)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8, torch.complex64])
def test_encoders_take_real_floating_point_input(dtype):
    x = torch.ones(2, 3, dtype=dtype)
    for encode in (lambda v: direct(v, 2), lambda v: rate(v, 2), lambda v: latency(v, 2)):
        with pytest.raises(TypeError, match=r"x must be a real floating-point tensor"):
            encode(x)
