"""The fast engine behind the neuron modules: a whole ``[T, B, ...]`` sequence as one autograd node whose backward
is written by hand (SPEC section 1).

:func:`neuron_sequence` here takes the arguments of, and returns the same :class:`SequenceResult` as,
:func:`spikelab.neurons.functional.neuron_sequence`, which stays the readable definition: this file only makes the
same equations cheap. Three backends, picked per call (:func:`choose_backend`):

- ``"native"``: the C kernel of :mod:`spikelab._native` (CPU; float32, float64, bfloat16): one pass over time
  per block of 256 neurons forward, one backward. It saves only its input ``x`` (the reference's graph saves two
  to three tensors of that size per step; an input repeated over time, a static stem's output, is read and saved
  as one step) and recomputes the membrane block by block in cache during the backward. Every operation rounds
  as in the reference, so spikes and gradients are bit-identical for the atan, fast-sigmoid, triangle and
  rectangle surrogates; sigmoid's derivative agrees within a few ulps (PyTorch's own sigmoid differs in the last
  bit between the vectorised and scalar parts of one tensor); the learned decay's gradient, a sum over all
  neurons, agrees up to summation order. A built-in surrogate's derivative is computed inside the kernel once a
  probe has shown the kernel's formula equal to ``surrogate.grad``; any other surrogate (or a built-in whose
  Python formula changed) has its derivative computed by ``surrogate.grad`` and passed in.
  For bfloat16 tensors (CPU autocast) the kernel keeps the membrane and all arithmetic in float32: its results
  are those of the reference run in float32 on the bfloat16 input, with spikes (exact) and gradients rounded to
  bfloat16, which is more accurate than the reference's own bfloat16 arithmetic (that rounds the membrane at every
  step; the torch backend reproduces it).
- ``"torch"``: any device and floating dtype (CUDA, float16, no C compiler). The forward loops
  over time without recording a graph (four small ops a step); the backward evaluates the surrogate for all
  steps at once and runs a one-op recurrence. Same spikes; gradients equal up to rounding (the backward
  groups the products differently).
- ``"reference"``: :func:`spikelab.neurons.functional.neuron_sequence` itself.

``engine(name)`` (a context manager), :func:`set_engine` or the environment variable ``SPIKELAB_ENGINE`` (read at
import) choose: ``"auto"`` (default: native where it applies, else torch; the reference loop while
``torch.compile`` traces a model, so that it generates its own fused code instead of breaking the graph at a
kernel it cannot see), or force one backend (an error where it cannot run, so a benchmark measures what it
names).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from spikelab import _native
from spikelab import surrogate as _surrogate
from spikelab._checks import check_float_tensor
from spikelab.neurons import functional
from spikelab.neurons._fused_backends import (
    _SFX, _SG_GIVEN, _Spec, _dense_input, _empty_steps, _like, _native_backward, _native_forward,  # noqa: F401
    _torch_backward, _torch_forward, native_surrogate, time_major_dense,
)
from spikelab.neurons.functional import RESET_MODES, Decay, SequenceResult

__all__ = ["ENGINES", "set_engine", "get_engine", "engine", "choose_backend", "neuron_sequence", "native_surrogate",
           "time_major_dense"]

ENGINES = ("auto", "native", "torch", "reference")
_engine = os.environ.get("SPIKELAB_ENGINE", "auto").strip() or "auto"
if _engine not in ENGINES:
    raise ValueError(f"SPIKELAB_ENGINE must be one of {', '.join(ENGINES)}; got {_engine!r}")


def set_engine(name: str) -> None:
    """Set the engine for every neuron sequence: ``"auto"``, ``"native"``, ``"torch"`` or ``"reference"``."""
    global _engine
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}; got {name!r}")
    _engine = name


def get_engine() -> str:
    """The engine set by :func:`set_engine` (default ``"auto"``)."""
    return _engine


@contextmanager
def engine(name: str) -> Iterator[None]:
    """Use engine ``name`` inside the ``with`` block (process-wide, also in other threads)."""
    previous = _engine
    set_engine(name)
    try:
        yield
    finally:
        set_engine(previous)



# ---- which backend ------------------------------------------------------------------------------------------

def _compiling() -> bool:
    return bool(getattr(torch.compiler, "is_compiling", lambda: False)())


def _native_reason(x: torch.Tensor, decay: Decay, v_init: Any, sg: Any) -> str:
    """Why the native kernel cannot run this call ('' if it can)."""
    if x.device.type != "cpu" or x.dtype not in _SFX:
        return f"the native kernel runs float32, float64 and bfloat16 on CPU, got {x.dtype} on {x.device.type}"
    if isinstance(decay, torch.Tensor) and (decay.numel() != 1 or decay.device.type != "cpu"):
        return "the native kernel takes one decay per layer (a scalar on CPU)"
    if isinstance(v_init, torch.Tensor) and (v_init.dtype != x.dtype or v_init.device != x.device):
        return "v_init must have x_seq's dtype and device for the native kernel"
    if not isinstance(sg, _surrogate.Surrogate):
        return "the surrogate is not a spikelab Surrogate"
    if _native.load() is None:
        return f"native kernels unavailable: {_native.status()['reason']}"
    return ""


def _torch_reason(x: torch.Tensor, decay: Decay, v_init: Any, sg: Any) -> str:
    if not x.is_floating_point():
        return f"x_seq must be floating point, got {x.dtype}"
    if not isinstance(sg, _surrogate.Surrogate):
        return "the surrogate is not a spikelab Surrogate"
    if isinstance(decay, torch.Tensor) and decay.dim() > x.dim() - 1:
        return "decay has more dimensions than one time step"
    if isinstance(v_init, torch.Tensor) and v_init.dtype != x.dtype:
        return "v_init must have x_seq's dtype"
    return ""


def choose_backend(x_seq: torch.Tensor, decay: Decay, v_init: Any, surrogate: Any) -> str:
    """The backend the current engine uses for these arguments: ``"native"``, ``"torch"`` or ``"reference"``.

    Raises ``RuntimeError`` with the reason if a forced engine cannot run them.
    """
    if _engine == "reference":
        return "reference"
    if _engine == "auto" and _compiling():
        return "reference"  # torch.compile traces the reference loop and generates its own fused code
    if _engine in ("auto", "native"):
        why = _native_reason(x_seq, decay, v_init, surrogate)
        if not why:
            return "native"
        if _engine == "native":
            raise RuntimeError(f"engine 'native' cannot run this call: {why}")
    why = _torch_reason(x_seq, decay, v_init, surrogate)
    if not why:
        return "torch"
    if _engine == "torch":
        raise RuntimeError(f"engine 'torch' cannot run this call: {why}")
    return "reference"

# ---- the autograd node ----------------------------------------------------------------------------------------

class _FusedSequence(torch.autograd.Function):
    """Inputs ``x`` ``[T, B, ...]``, ``decay`` (tensor or None), ``v_init`` (tensor ``[B, ...]`` or None), spec.
    Outputs spikes ``[T, B, ...]``, the last membrane ``[B, ...]``, and (if recording) ``h`` and ``v``
    ``[T, B, ...]`` (empty otherwise; never differentiable). The native backend saves only ``x`` (for an input
    repeated over time, e.g. a static stem's output, that is one step's worth); the torch backend saves ``h``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, decay_t: torch.Tensor | None, v_init_t: torch.Tensor | None,
                spec: _Spec) -> tuple[torch.Tensor, ...]:
        x = _dense_input(x)
        if spec.backend == "native":
            spikes, v_last, h_rec, v_rec = _native_forward(x, decay_t, v_init_t, spec)
            saved = x
        else:
            spikes, v_last, h_rec, v_rec = _torch_forward(x, decay_t, v_init_t, spec)
            saved = h_rec
            if not spec.record:
                h_rec = x.new_empty(0)
        ctx.spec = spec
        ctx.save_for_backward(saved, decay_t, v_init_t)
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(h_rec, v_rec)
        return spikes, v_last, h_rec, v_rec

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g_spikes: torch.Tensor | None, g_v_last: torch.Tensor | None,
                 *_: Any) -> tuple[torch.Tensor | None, ...]:
        saved, decay_t, v_init_t = ctx.saved_tensors
        spec: _Spec = ctx.spec
        step = saved[0]
        T = saved.shape[0]
        if g_spikes is None:
            g_spikes = torch.zeros_like(step).expand(T, *step.shape)
        g_spikes = _like(g_spikes[0], step).expand(T, *step.shape) if g_spikes.stride(0) == 0 \
            else _like(g_spikes, step, T)  # one step repeated (e.g. from spikes.sum()) stays one step
        g_v_last = None if g_v_last is None else _like(g_v_last, step)
        need_decay = decay_t is not None and ctx.needs_input_grad[1]
        need_v_init = v_init_t is not None and ctx.needs_input_grad[2]
        backward = _native_backward if spec.backend == "native" else _torch_backward
        gx, gd, gvi = backward(saved, g_spikes, g_v_last, decay_t, v_init_t, spec, need_decay, need_v_init)
        return gx, gd, gvi, None


# ---- the entry point ------------------------------------------------------------------------------------------

def neuron_sequence(
    x_seq: torch.Tensor,
    *,
    decay: Decay,
    v_th: float,
    reset_mode: str,
    surrogate: _surrogate.Surrogate,
    v_reset: float = 0.0,
    detach_reset: bool = False,
    v_init: torch.Tensor | float = 0.0,
    record: bool = False,
) -> SequenceResult:
    """:func:`spikelab.neurons.functional.neuron_sequence` on the fastest backend that applies (see the module
    docstring): spikes ``[T, B, ...]``, the last membrane ``[B, ...]`` and, with ``record=True``, ``h_seq`` and
    ``v_seq`` ``[T, B, ...]`` (detached). Arguments as there; ``decay`` may be a float or a tensor (a learned
    decay: a scalar for the native kernel, any shape broadcastable to one step for the torch backend)."""
    if reset_mode not in RESET_MODES:
        raise ValueError(f"reset must be one of {', '.join(repr(m) for m in RESET_MODES)}; got {reset_mode!r}")
    check_float_tensor(x_seq, "x_seq")
    if isinstance(v_init, torch.Tensor):
        check_float_tensor(v_init, "v_init")
    backend = choose_backend(x_seq, decay, v_init, surrogate)
    if backend == "reference":
        return functional.neuron_sequence(
            x_seq, decay=decay, v_th=v_th, reset_mode=reset_mode, surrogate=surrogate, v_reset=v_reset,
            detach_reset=detach_reset, v_init=v_init, record=record)
    decay_t = decay if isinstance(decay, torch.Tensor) else None
    if decay_t is not None and backend == "native":
        decay_t = decay_t.reshape(())
    v_init_t = v_init if isinstance(v_init, torch.Tensor) else None
    spec = _Spec(v_th=float(v_th), reset_mode=reset_mode, surrogate=surrogate, v_reset=float(v_reset),
                 detach_reset=bool(detach_reset), v_init=0.0 if v_init_t is not None else float(v_init),
                 record=record, decay=None if decay_t is not None else float(decay), backend=backend)
    spikes, v_last, h_rec, v_rec = _FusedSequence.apply(x_seq, decay_t, v_init_t, spec)
    if not record:
        return SequenceResult(spikes, v_last, None, None)
    return SequenceResult(spikes, v_last, h_rec.detach(), v_rec.detach())
