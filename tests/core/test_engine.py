"""spikelab.engine: native 2x2 max pooling and bit-packed binary saved activations, against PyTorch's own ops."""
import contextlib
import math
import platform
import sys

import pytest
import torch
import torch.nn.functional as F
from _support import require
from torch import nn

from spikelab import _native, engine, layers


def native_available() -> bool:
    return _native.load() is not None


def _pool_both(x: torch.Tensor, g_seed: int = 0):
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = F.max_pool2d(a, 2), engine.max_pool2d_2x2(b)
    g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(g_seed), dtype=x.dtype)
    ya.backward(g)
    yb.backward(g)
    return ya, yb, a.grad, b.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 5, 7, 9), (2, 3, 2, 3), (0, 3, 4, 4), (2, 1, 6, 6)])
def test_max_pool_of_spikes_equals_pytorch(dtype, channels_last, shape):
    # values, and the gradient routed to the first 1 of each window (or its first input if all are 0)
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) < 0.3).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ya, yb, ga, gb = _pool_both(x)
    assert torch.equal(ya, yb) and torch.equal(ga, gb)
    if ya.numel():
        assert yb.is_contiguous(memory_format=torch.channels_last) == ya.is_contiguous(
            memory_format=torch.channels_last)


def test_max_pool_saves_one_byte_per_output_for_spikes_and_falls_back_otherwise():
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    spikes = (torch.rand(2, 3, 8, 8) < 0.5).float().requires_grad_()
    (arg,) = engine.max_pool2d_2x2(spikes).grad_fn.saved_tensors
    assert arg.dtype == torch.uint8 and arg.shape == (2, 3, 4, 4)
    # real values, NaN, a strided view: PyTorch's pooling (same values, gradients, and NaN propagation)
    real = torch.randn(2, 3, 6, 6)
    nan = (torch.rand(2, 3, 6, 6) < 0.5).float()
    nan[0, 0, 1, 1] = math.nan
    for x in (real, nan, torch.randn(2, 3, 6, 12)[..., ::2]):
        ya, yb, ga, gb = _pool_both(x)
        assert torch.equal(ya.nan_to_num(7.0), yb.nan_to_num(7.0)) and torch.equal(ga, gb)
    with pytest.raises(RuntimeError, match="too small"):
        engine.max_pool2d_2x2(torch.zeros(1, 1, 1, 4))  # PyTorch's own error


def test_layers_max_pool_is_nn_max_pool_for_every_setting():
    x = (torch.rand(2, 3, 9, 9) < 0.4).float()
    for kw in (dict(kernel_size=2), dict(kernel_size=(2, 2), stride=2), dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=2, ceil_mode=True), dict(kernel_size=2, stride=1)):
        ours, theirs = layers.MaxPool2d(**kw), nn.MaxPool2d(**kw)
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ours(a), theirs(b)
        assert torch.equal(ya, yb), kw
        ya.sum().backward()
        yb.sum().backward()
        assert torch.equal(a.grad, b.grad), kw


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape,density", [((300, 100, 70), 0.2), ((2, 64, 257, 65), 0.05), ((96, 784, 512), 0.15)])
def test_linear_on_spikes_equals_f_linear(dtype, shape, density):
    # the row sums give F.linear's values and gradients (to rounding: the additions run in another order)
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    *lead, K, N = shape
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(*lead, K, generator=g) < density).to(dtype)
    w = torch.randn(N, K, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(N, generator=g, dtype=dtype, requires_grad=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = F.linear(xa, w, b), engine.linear(xb, w, b)
    assert yb.grad_fn is not None and "SpikeLinear" in type(yb.grad_fn.next_functions[0][0]).__name__
    gy = torch.randn(ya.shape, generator=g, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-11)
    torch.testing.assert_close(yb, ya, **tol)
    for a, b_ in zip(torch.autograd.grad(ya, (xa, w, b), gy), torch.autograd.grad(yb, (xb, w, b), gy)):
        torch.testing.assert_close(b_, a, **tol)
    # without bias, and without an input gradient (a data input)
    y2 = engine.linear(x, w)
    torch.testing.assert_close(y2, F.linear(x, w), **tol)
    (gw,) = torch.autograd.grad(y2, (w,), gy)
    torch.testing.assert_close(gw, torch.autograd.grad(F.linear(x, w), (w,), gy)[0], **tol)


def test_linear_takes_the_dense_path_where_row_sums_do_not_pay():
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    w = torch.randn(128, 256)
    for x in (torch.rand(64, 256),                               # real values
              (torch.rand(64, 256) < 0.6).float(),               # dense spikes
              (torch.rand(2, 256) < 0.1).float()):               # too small
        y = engine.linear(x.requires_grad_(), w)
        assert "SpikeLinear" not in str(y.grad_fn) and torch.equal(y, F.linear(x, w))
    assert "SpikeLinear" not in str(engine.linear((torch.rand(64, 256) < 0.1).float().requires_grad_(),
                                                  torch.randn(10, 256)).grad_fn)  # fewer than 64 outputs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = engine.linear((torch.rand(64, 256) < 0.1).float(), w)
    assert y.dtype == torch.bfloat16  # autocast: F.linear in bfloat16
    lin = layers.Linear(256, 128)
    x = (torch.rand(64, 256) < 0.1).float()
    torch.testing.assert_close(lin(x), F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_pack_keeps_binary_activations_as_bits_and_restores_them_exactly(dtype):
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    n = engine.PACK_MIN_ELEMENTS + 13  # not a multiple of 8
    spikes = (torch.rand(n) < 0.3).to(dtype)
    spikes[5] = -0.0
    packed = engine._pack(spikes)
    assert isinstance(packed, engine._PackedBits) and packed.nbytes == math.ceil(n / 8)
    restored = engine._unpack(packed)
    assert torch.equal(restored, spikes) and restored.dtype == dtype
    # a channels-last 4-D map keeps its strides
    cl = (torch.rand(8, 16, 12, 12) < 0.2).to(dtype).contiguous(memory_format=torch.channels_last)
    back = engine._unpack(engine._pack(cl))
    assert torch.equal(back, cl) and back.stride() == cl.stride()
    # left as they are: real values, NaN, small tensors, parameters, views with gaps
    real = torch.rand(n, dtype=dtype)
    with_nan = spikes.clone()
    with_nan[-1] = math.nan
    param = nn.Parameter(torch.zeros(n, dtype=dtype))
    gappy = torch.zeros(2 * n, dtype=dtype)[::2]
    for t in (real, with_nan, spikes[:100], param, gappy):
        assert engine._pack(t) is t


def test_pack_binary_saved_gives_the_same_gradients_and_stores_the_spikes_as_bits(monkeypatch):
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    spikes = (torch.rand(32, 8, 24, 24) < 0.2).float()
    w = torch.randn(32, 16, 24, 24)
    stored = []
    pack = engine._pack
    monkeypatch.setattr(engine, "_pack", lambda t: stored.append(pack(t)) or stored[-1])

    def grads(packed: bool):
        conv.zero_grad()
        with engine.pack_binary_saved() if packed else contextlib.nullcontext():
            y = conv(spikes)
        (y * w).sum().backward()
        return conv.weight.grad.clone(), conv.bias.grad.clone()

    assert all(torch.equal(a, b) for a, b in zip(grads(True), grads(False)))
    # the conv's binary input (saved for the weight gradient) was stored as bits, its weight as it is
    bits = [s for s in stored if isinstance(s, engine._PackedBits)]
    assert len(bits) == 1 and bits[0].nbytes * 8 == spikes.numel()
    assert any(s is conv.weight for s in stored)


def test_packing_is_off_without_native_kernels(monkeypatch):
    try:
        monkeypatch.setenv("SPIKELAB_NATIVE", "0")
        _native.reset()
        x = (torch.rand(1 << 15) < 0.5).float()
        with engine.pack_binary_saved():
            y = (x.requires_grad_() * torch.ones_like(x)).sum()
        y.backward()
        assert torch.equal(x.grad, torch.ones_like(x))
        assert torch.equal(engine.max_pool2d_2x2(torch.ones(1, 1, 4, 4)), torch.ones(1, 1, 2, 2))
    finally:
        monkeypatch.undo()
        _native.reset()


def test_tune_allocator_and_status():
    applied = engine.tune_allocator()
    assert isinstance(applied, bool)
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert applied and engine.tune_allocator()  # idempotent
    st = engine.status()
    assert st["neuron_engine"] in ("auto", "native", "torch", "reference") and "available" in st["native"]
