"""Speed and memory switches for training spiking networks, each with a portable fallback.

- The neuron engine (:mod:`spikelab.neurons.fused`): ``engine.neurons("native" | "torch" | "reference")``.
- :func:`max_pool2d_2x2`: 2x2 max pooling that, on a map of spikes, is a logical OR computed by the native kernel
  and saves one byte per output (which input gets the gradient) instead of the float input and int64 indices
  ``max_pool2d`` keeps; any other input takes PyTorch's own pooling. Same values and gradients either way.
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

__all__ = ["neurons", "max_pool2d_2x2", "pack_binary_saved", "tune_allocator", "status", "PACK_MIN_ELEMENTS"]

#: Saved activations smaller than this stay as they are (packing them saves too little to pay for the check).
PACK_MIN_ELEMENTS = 1 << 14
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
