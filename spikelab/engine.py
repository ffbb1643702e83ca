"""Speed and memory switches for training spiking networks, each with a portable fallback.

- The neuron engine (:mod:`spikelab.neurons.fused`): ``engine.neurons("native" | "torch" | "reference")``.
- :func:`max_pool2d_2x2`: 2x2 max pooling that, on a map of spikes, is a logical OR computed by the native kernel
  and saves one byte per output (which input gets the gradient) instead of the float input and int64 indices
  ``max_pool2d`` keeps; any other input takes PyTorch's own pooling. Same values and gradients either way.
- :func:`linear`: ``x W^T + b`` for an input of spikes as sums of the weight rows where ``x`` is 1 (the work is
  spikes x outputs additions, not inputs x outputs multiply-adds), and the weight gradient likewise; it saves the
  spikes as bits. Any other input (or a dense one, over half 1s) takes ``F.linear``. Same values and gradients up
  to the order of the additions.
- :func:`pack_binary_saved`: a context in which every activation that autograd saves and that holds only 0s and 1s
  (spikes, pooled spikes, a conv's spiking input) is stored as one bit per element, and restored exactly for the
  backward. Binary is checked value by value when saving (the check stops at the first other value, so real-valued
  activations cost almost nothing).
- :func:`tune_allocator`: glibc returns large freed blocks to the OS and page-faults them back in on the next
  step (PERFORMANCE.md: 20-30 % of a conv SNN step at T=8); this keeps them in the process instead.
- :func:`status`: what is active, for benchmark records.

Everything here runs on CPU tensors with the native kernels and falls back to PyTorch elsewhere (CUDA, bfloat16,
no C compiler, ``torch.compile`` tracing).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from spikelab import _native
from spikelab.neurons import fused
from spikelab.neurons.fused import time_major_dense

__all__ = ["neurons", "max_pool2d_2x2", "linear", "pack_binary_saved", "tune_allocator", "status",
           "PACK_MIN_ELEMENTS", "SPARSE_MAX_DENSITY"]

#: Saved activations smaller than this stay as they are (packing them saves too little to pay for the check).
PACK_MIN_ELEMENTS = 1 << 14
#: :func:`linear` sums weight rows only for inputs with at most this fraction of 1s; a denser input takes the dense
#: matmul, which is faster there (on a 2-core Xeon a gathered row-sum runs at about a third of a dense multiply-add's
#: rate, so the break-even is near 0.35).
SPARSE_MAX_DENSITY = 0.25
_allocator_tuned = False


def neurons(name: str):
    """Context manager choosing the neuron engine (``"auto"``, ``"native"``, ``"torch"``, ``"reference"``); see
    :func:`spikelab.neurons.fused.engine`."""
    return fused.engine(name)


def _compiling() -> bool:
    return bool(getattr(torch.compiler, "is_compiling", lambda: False)())


def _native_ok(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not _compiling() \
        and _native.load() is not None


# ---- max pooling of spikes ------------------------------------------------------------------------------------

def _layout(x: torch.Tensor) -> str | None:
    if x.is_contiguous():
        return "nchw"
    if x.is_contiguous(memory_format=torch.channels_last):
        return "nhwc"
    return None


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        layout = _layout(x) or "nchw"
        if _layout(x) is None:
            x = x.contiguous()
        B, C, H, W = x.shape
        fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
        out = torch.empty((B, C, H // 2, W // 2), dtype=x.dtype, memory_format=fmt)
        arg = torch.empty(out.shape, dtype=torch.uint8, memory_format=fmt)
        lib, sfx, n = _native.load(), "f32" if x.dtype == torch.float32 else "f64", _native.num_threads()
        if out.numel() == 0:
            binary = True
        elif layout == "nchw":
            binary = getattr(lib, f"maxpool2_binary_nchw_{sfx}")(
                x.data_ptr(), B * C, H, W, out.data_ptr(), arg.data_ptr(), n)
        else:
            binary = getattr(lib, f"maxpool2_binary_nhwc_{sfx}")(
                x.data_ptr(), B, H, W, C, out.data_ptr(), arg.data_ptr(), n)
        ctx.binary, ctx.layout, ctx.in_shape = bool(binary), layout, x.shape
        if binary:
            ctx.save_for_backward(arg)
            return out
        del out, arg  # not spikes: PyTorch's pooling, saving what its own backward needs
        out, idx = torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
        ctx.save_for_backward(x, idx)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        if not ctx.binary:
            x, idx = ctx.saved_tensors
            return torch.ops.aten.max_pool2d_with_indices_backward(g, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
        (arg,) = ctx.saved_tensors
        B, C, H, W = ctx.in_shape
        fmt = torch.channels_last if ctx.layout == "nhwc" else torch.contiguous_format
        g = g.contiguous(memory_format=fmt)
        gin = torch.empty((B, C, H, W), dtype=g.dtype, memory_format=fmt)
        if gin.numel() == 0:
            return gin
        lib, sfx, n = _native.load(), "f32" if g.dtype == torch.float32 else "f64", _native.num_threads()
        if ctx.layout == "nchw":
            getattr(lib, f"maxpool2_binary_backward_nchw_{sfx}")(g.data_ptr(), arg.data_ptr(), B * C, H, W,
                                                                  gin.data_ptr(), n)
        else:
            getattr(lib, f"maxpool2_binary_backward_nhwc_{sfx}")(g.data_ptr(), arg.data_ptr(), B, H, W, C,
                                                                  gin.data_ptr(), n)
        return gin


def max_pool2d_2x2(x: torch.Tensor) -> torch.Tensor:
    """``torch.nn.functional.max_pool2d(x, 2)`` for ``x`` ``[B, C, H, W]``: same values and gradients (the
    gradient goes to the first maximum of each window), faster and with a smaller saved state for spikes."""
    if x.dim() != 4 or x.shape[2] < 2 or x.shape[3] < 2 or not _native_ok(x):
        return torch.nn.functional.max_pool2d(x, 2)  # (also raises PyTorch's own errors)
    return _MaxPool2x2.apply(x)


# ---- linear layers on spikes ----------------------------------------------------------------------------------

class _SpikeLinear(torch.autograd.Function):
    """``x2 @ weight.T + bias`` for a binary ``x2`` ``[M, K]`` given as row offsets and its bits (``K`` padded to
    whole bytes per row)."""

    @staticmethod
    def forward(ctx: Any, x2: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, bits: torch.Tensor,
                offsets: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        lib, sfx, n = _native.load(), _SFX[x2.dtype], _native.num_threads()
        M, K = x2.shape
        N = weight.shape[0]
        wt = weight.detach().t().contiguous()  # [K, N]: the rows that spikes select
        y = torch.empty(M, N, dtype=x2.dtype)
        b = None if bias is None else bias.detach().contiguous()
        if getattr(lib, f"row_gather_{sfx}")(offsets.data_ptr(), cols.data_ptr(), M, wt.data_ptr(), K, N,
                                             None if b is None else b.data_ptr(), y.data_ptr(), n) != 0:
            raise MemoryError("the spike linear forward could not allocate its buffer")
        ctx.save_for_backward(weight, bits, offsets)
        ctx.K, ctx.has_bias = K, bias is not None
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, gy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        weight, bits, offsets = ctx.saved_tensors
        gy = gy.contiguous()
        M, N = gy.shape
        K = ctx.K
        gx = gy.mm(weight) if ctx.needs_input_grad[0] else None  # [M, K]
        gw = gb = None
        if ctx.needs_input_grad[1]:
            lib, n = _native.load(), _native.num_threads()
            nnz = int(offsets[-1])
            cols = torch.empty(nnz, dtype=torch.int32)
            lib.spike_csr(bits.data_ptr(), M, K, offsets.data_ptr(), cols.data_ptr(), n)
            t_offsets, t_rows = torch.empty(K + 1, dtype=torch.int64), torch.empty(nnz, dtype=torch.int32)
            if lib.csr_transpose(offsets.data_ptr(), cols.data_ptr(), M, K, t_offsets.data_ptr(),
                                 t_rows.data_ptr()) != 0:
                raise MemoryError("the spike linear backward could not allocate its column counts")
            del cols
            gwt = torch.empty(K, N, dtype=gy.dtype)  # dL/dW^T[k, :] = sum of gy's rows where input k spiked
            if getattr(lib, f"row_gather_{_SFX[gy.dtype]}")(t_offsets.data_ptr(), t_rows.data_ptr(), K,
                                                            gy.data_ptr(), M, N, None, gwt.data_ptr(), n) != 0:
                raise MemoryError("the spike linear backward could not allocate its buffer")
            gw = gwt.t()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum(0)
        return gx, gw, gb, None, None, None


_SFX = {torch.float32: "f32", torch.float64: "f64"}


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.linear(x, weight, bias)`` (``x`` ``[..., K]``, ``weight`` ``[N, K]``): for an input
    of 0s and 1s (spikes) with at most :data:`SPARSE_MAX_DENSITY` ones, the sums of the selected weight rows, and
    the weight gradient as sums of the output gradient's rows (the input gradient is a dense product, as in
    ``F.linear``); saves the spikes as bits. Otherwise (also for fewer than 64 outputs, and under autocast)
    ``F.linear``."""
    K = weight.shape[-1] if weight.dim() == 2 else -1
    if (x.dim() < 1 or x.shape[-1] != K or x.numel() < 4096 or weight.shape[0] < 64 or not _native_ok(x)
            or weight.dtype != x.dtype
            or weight.device != x.device or (bias is not None and bias.dtype != x.dtype)
            or torch.is_autocast_enabled("cpu")):
        return torch.nn.functional.linear(x, weight, bias)
    x2 = x.reshape(-1, K)
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    M = x2.shape[0]
    lib, n = _native.load(), _native.num_threads()
    rows = getattr(lib, f"spike_rows_{_SFX[x.dtype]}")
    bits = torch.empty(M, (K + 7) // 8, dtype=torch.uint8)
    counts = torch.empty(M + 1, dtype=torch.int64)
    counts[0] = 0
    head = min(M, 64)  # a look at the first rows: real-valued or dense inputs leave at once
    if not rows(x2.data_ptr(), head, K, bits.data_ptr(), counts[1:].data_ptr(), n) \
            or int(counts[1:head + 1].sum()) > 1.2 * SPARSE_MAX_DENSITY * head * K:
        return torch.nn.functional.linear(x, weight, bias)
    if not rows(x2.data_ptr(), M, K, bits.data_ptr(), counts[1:].data_ptr(), n):
        return torch.nn.functional.linear(x, weight, bias)
    offsets = counts.cumsum_(0)
    nnz = int(offsets[-1])
    if nnz > SPARSE_MAX_DENSITY * M * K:
        return torch.nn.functional.linear(x, weight, bias)
    cols = torch.empty(nnz, dtype=torch.int32)
    lib.spike_csr(bits.data_ptr(), M, K, offsets.data_ptr(), cols.data_ptr(), n)
    y = _SpikeLinear.apply(x2, weight, bias, bits, offsets, cols)
    return y.reshape(*x.shape[:-1], weight.shape[0])


# ---- binary saved activations --------------------------------------------------------------------------------

class _PackedBits:
    """A saved activation of 0s and 1s kept as bits: its shape, strides and dtype, and ``ceil(n / 8)`` bytes."""

    __slots__ = ("bits", "shape", "stride", "dtype")

    def __init__(self, bits: torch.Tensor, t: torch.Tensor) -> None:
        self.bits, self.shape, self.stride, self.dtype = bits, t.shape, t.stride(), t.dtype

    @property
    def nbytes(self) -> int:
        return self.bits.numel()


def _pack(t: torch.Tensor) -> Any:
    if (t.numel() < PACK_MIN_ELEMENTS or t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64)
            or (t.requires_grad and t.is_leaf) or min(t.stride(), default=1) < 0 or not time_major_dense(t)):
        return t
    lib = _native.load()
    if lib is None:
        return t
    bits = torch.empty((t.numel() + 7) // 8, dtype=torch.uint8)
    pack = lib.pack_bits_f32 if t.dtype == torch.float32 else lib.pack_bits_f64
    if not pack(t.data_ptr(), t.numel(), bits.data_ptr(), _native.num_threads()):
        return t
    return _PackedBits(bits, t)


def _unpack(saved: Any) -> torch.Tensor:
    if isinstance(saved, torch.Tensor):
        return saved
    out = torch.empty_strided(saved.shape, saved.stride, dtype=saved.dtype)
    unpack = _native.load().unpack_bits_f32 if saved.dtype == torch.float32 else _native.load().unpack_bits_f64
    unpack(saved.bits.data_ptr(), out.numel(), out.data_ptr(), _native.num_threads())
    return out


@contextmanager
def pack_binary_saved() -> Iterator[None]:
    """Within the block, autograd stores saved activations that hold only 0s and 1s as bits (32x smaller than
    float32) and restores them exactly for the backward. Does nothing under ``torch.compile`` tracing or where
    the native kernels are unavailable."""
    if _compiling() or _native.load() is None:
        yield
        return
    with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
        yield


# ---- the allocator ---------------------------------------------------------------------------------------------

def tune_allocator() -> bool:
    """Keep freed memory in the process (glibc only): large tensors then come from the heap instead of fresh
    ``mmap`` pages that the kernel zero-fills on every step. Process-wide and permanent (``mallopt``
    ``M_MMAP_MAX=0``, ``M_TRIM_THRESHOLD`` 1 TiB); the same as starting Python with ``MALLOC_MMAP_MAX_=0
    MALLOC_TRIM_THRESHOLD_=1099511627776``. Returns whether it applied (False off Linux/glibc)."""
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    ok = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _allocator_tuned = bool(ok)
    return _allocator_tuned


def status() -> dict[str, Any]:
    """The engine's state: neuron engine, native kernels (path, flags or the reason they are off), allocator."""
    return dict(neuron_engine=fused.get_engine(), native=_native.status(), allocator_tuned=_allocator_tuned,
                threads=torch.get_num_threads())
