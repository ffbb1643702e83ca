"""The fast engine behind the neuron modules: a whole ``[T, B, ...]`` sequence as one autograd node whose backward
is written by hand (SPEC section 1).

:func:`neuron_sequence` here takes the arguments of, and returns the same :class:`SequenceResult` as,
:func:`spikelab.neurons.functional.neuron_sequence`, which stays the readable definition: this file only makes the
same equations cheap. Three backends, picked per call (:func:`choose_backend`):

- ``"native"``: the C kernel of :mod:`spikelab._native` (CPU, float32/float64): one pass over time per block of
  neurons forward, one backward. It saves only the charged membrane ``h`` ``[T, B, ...]`` (the reference's
  autograd graph saves two to three tensors of that size per step) and recomputes spikes and ``v[t-1]`` from
  it. It rounds every operation like the reference, so spikes and gradients are bit-identical (the learned
  decay's gradient, a sum over all neurons, agrees up to summation order). A built-in surrogate's derivative
  is computed inside the kernel once a probe has shown it bit-identical to ``surrogate.grad``; any other
  surrogate (or one whose formula changed) has its derivative computed by ``surrogate.grad`` over all steps
  at once and passed in.
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
import) choose: ``"auto"`` (default: native where it applies,
else torch; the reference loop while ``torch.compile`` traces a model, so that it generates its own fused code
instead of breaking the graph at a kernel it cannot see), or force one backend (an error where it cannot run, so a
benchmark measures what it names).
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from spikelab import _native
from spikelab import surrogate as _surrogate
from spikelab.neurons import functional
from spikelab.neurons.functional import RESET_MODES, Decay, SequenceResult

ENGINES = ("auto", "native", "torch", "reference")
_engine = os.environ.get("SPIKELAB_ENGINE", "auto").strip() or "auto"
if _engine not in ENGINES:
    raise ValueError(f"SPIKELAB_ENGINE must be one of {', '.join(ENGINES)}; got {_engine!r}")

_RESET_CODES = {"hard": 0, "soft": 1, "none": 2}
_SG_CODES = {_surrogate.ATan: 0, _surrogate.Sigmoid: 1, _surrogate.FastSigmoid: 2, _surrogate.Triangle: 3,
             _surrogate.Rectangle: 4}
_SG_GIVEN = 5
# torch's own sigmoid is not bit-reproducible across layouts (its vectorised and scalar loops differ in the last
# bit, so the reference gives a neuron a different gradient depending on where it sits in the tensor): here
# the kernel's sigmoid only has to agree within 4 ulps (of the value or of the peak).
_ULP_TOLERANT = (_surrogate.Sigmoid,)
_BLOCK = 256  # neurons per block in kernels.c
_SFX = {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16"}  # kernel names per dtype


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype == torch.bfloat16 else dtype


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


@dataclass(frozen=True)
class _Spec:
    v_th: float
    reset_mode: str
    surrogate: _surrogate.Surrogate
    v_reset: float
    detach_reset: bool
    v_init: float  # used where no v_init tensor is given
    record: bool
    decay: float | None  # None: the decay is a tensor input
    backend: str


# ---- which backend ------------------------------------------------------------------------------------------

def time_major_dense(x: torch.Tensor) -> bool:
    """True if ``x`` ``[T, ...]`` fills its memory without gaps or overlaps and each time step is one block of
    ``x[0].numel()`` elements (any layout inside a step, e.g. channels-last): then the kernels can treat it as a
    flat ``[T, N]`` array and every output made by ``empty_like`` has the same layout."""
    if x.dim() == 0 or x.stride(0) != x[0].numel() and x.shape[0] > 1:
        return False
    dims = sorted((st, sz) for st, sz in zip(x.stride(), x.shape) if sz != 1)
    expected = 1
    for st, sz in dims:
        if st != expected:
            return False
        expected *= sz
    return True


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


# ---- the surrogate inside the kernel --------------------------------------------------------------------------

_probe_cache: dict[tuple, bool] = {}


def _probe_values(dtype: torch.dtype, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.cat([torch.linspace(-4, 4, 801, dtype=torch.float64), torch.randn(400, generator=g,
                                                                                  dtype=torch.float64) * 2])
    special = torch.tensor([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1e-30, -1e-30, 1e6, -1e6], dtype=torch.float64)
    z = torch.cat([base * scale, base, special * scale, special]).to(dtype)
    return torch.cat([z, torch.nextafter(z, torch.full_like(z, 1e30)), torch.nextafter(z, torch.full_like(z, -1e30))])


def native_surrogate(sg: _surrogate.Surrogate, dtype: torch.dtype) -> int:
    """The kernel's code for ``sg`` in ``dtype``: its built-in formula where a probe over many values (around
    zero, the support's edges, tiny and huge ones) gives exactly ``sg.grad``; otherwise ``_SG_GIVEN`` (the
    derivative is then computed by ``sg.grad`` and passed to the kernel)."""
    kind = _SG_CODES.get(type(sg))
    if kind is None:
        return _SG_GIVEN
    param = float(getattr(sg, sg.width_param))
    key = (type(sg), param, dtype)
    if key not in _probe_cache:
        lib = _native.load()
        z = _probe_values(dtype, param)
        out = torch.empty_like(z)
        fn = lib.surrogate_grad_f32 if dtype == torch.float32 else lib.surrogate_grad_f64
        fn(kind, param, z.data_ptr(), out.data_ptr(), z.numel())
        ref = sg.grad(z)
        if type(sg) in _ULP_TOLERANT:
            # within 4 ulps of the value or of the peak alpha / 4 (1 - sg cancels where sg is near 1)
            ok = bool(((out - ref).abs() <= 4 * torch.finfo(dtype).eps * (ref.abs() + param / 4)).all())
        else:
            ok = bool(torch.equal(out, ref))
        _probe_cache[key] = ok
    return kind if _probe_cache[key] else _SG_GIVEN


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


def _dense_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself if it is time-major dense or one dense step repeated over time (stride 0), else a copy."""
    if time_major_dense(x) or (x.stride(0) == 0 and time_major_dense(x[0].unsqueeze(0))):
        return x
    return x.contiguous()


def _empty_steps(step: torch.Tensor, T: int) -> torch.Tensor:
    """An uninitialised ``[T, *step.shape]`` tensor whose every step has ``step``'s (dense) layout."""
    flat = torch.empty(T * step.numel(), dtype=step.dtype, device=step.device)
    return flat.as_strided((T, *step.shape), (step.numel(), *step.stride()))


def _like(t: torch.Tensor, ref_step: torch.Tensor, T: int | None = None) -> torch.Tensor:
    """``t`` (``[T, *ref_step.shape]`` or ``ref_step``'s shape) in ``ref_step``'s dense layout, copied only if
    its strides differ."""
    want = ref_step.stride() if T is None else (ref_step.numel(), *ref_step.stride())
    if t.stride() == want or t.numel() <= 1:
        return t
    out = torch.empty_like(ref_step) if T is None else _empty_steps(ref_step, T)
    return out.copy_(t)


def _decay_value(decay_t: torch.Tensor | None, spec: _Spec) -> float:
    return float(decay_t) if decay_t is not None else float(spec.decay)


def _params(spec: _Spec, T: int, N: int, decay: float, sg_code: int = 0) -> _native.LIFParams:
    sg = spec.surrogate
    param = float(getattr(sg, sg.width_param)) if sg_code != _SG_GIVEN else 0.0
    return _native.LIFParams(T, N, decay, spec.v_th, spec.v_reset, _RESET_CODES[spec.reset_mode],
                             int(spec.detach_reset), sg_code, param, spec.v_init, _native.num_threads())


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _native_forward(x, decay_t, v_init_t, spec, *, spikes_out=True):
    """Run the kernel forward; returns spikes (or None), v_last, h_rec, v_rec (empty unless recording)."""
    lib = _native.load()
    T, step = x.shape[0], x[0]
    N = step.numel()
    spikes = _empty_steps(step, T) if spikes_out else None
    v_last = torch.empty_like(step)
    h_rec = _empty_steps(step, T) if spec.record else x.new_empty(0)
    v_rec = _empty_steps(step, T) if spec.record else x.new_empty(0)
    v_init = None if v_init_t is None else _like(v_init_t.detach().expand_as(step), step)
    if N > 0:
        p = _params(spec, T, N, _decay_value(decay_t, spec))
        fwd = getattr(lib, f"lif_forward_{_SFX[x.dtype]}")
        fwd(ctypes.byref(p), x.data_ptr(), x.stride(0), _ptr(v_init), p.decay, _ptr(spikes),
            _ptr(h_rec) if spec.record else None, _ptr(v_rec) if spec.record else None, v_last.data_ptr())
    return spikes, v_last, h_rec, v_rec


def _native_backward(x, g_spikes, g_v_last, decay_t, v_init_t, spec, need_decay, need_v_init):
    lib = _native.load()
    T, step = x.shape[0], x[0]
    N = step.numel()
    gx = _empty_steps(step, T)
    gvi = torch.empty_like(step) if need_v_init else None
    nblocks = (N + _BLOCK - 1) // _BLOCK
    gd_parts = torch.zeros(nblocks, dtype=torch.float64) if need_decay else None
    code = native_surrogate(spec.surrogate, _compute_dtype(x.dtype))
    sg_given = None
    if code == _SG_GIVEN and N > 0:  # the derivative from surrogate.grad, at the recomputed h - v_th
        xc = x.to(_compute_dtype(x.dtype))
        vc = None if v_init_t is None else v_init_t.to(xc.dtype)
        h = _native_forward(xc, decay_t, vc, dataclasses.replace(spec, record=True), spikes_out=False)[2]
        sg_given = _like(spec.surrogate.grad(h - spec.v_th), xc[0], T)
        del h, xc
    v_init = None if v_init_t is None else _like(v_init_t.detach().expand_as(step), step)
    if N > 0:
        p = _params(spec, T, N, _decay_value(decay_t, spec), code)
        bwd = getattr(lib, f"lif_backward_{_SFX[x.dtype]}")
        status = bwd(ctypes.byref(p), x.data_ptr(), x.stride(0), g_spikes.data_ptr(), g_spikes.stride(0),
                     _ptr(g_v_last),
                     _ptr(v_init), p.decay, _ptr(sg_given), gx.data_ptr(), _ptr(gvi), _ptr(gd_parts))
        if status != 0:
            raise MemoryError(f"the native neuron backward could not allocate {T} x {_BLOCK} values per thread")
    elif gvi is not None:
        gvi.zero_()
    gd = gd_parts.sum().to(decay_t.dtype).reshape(decay_t.shape) if need_decay else None
    return gx, gd, gvi


def _reset(h: torch.Tensor, spec: _Spec) -> torch.Tensor:
    """Membrane after the reset, without a graph (same values as functional.reset; ``where`` for the product)."""
    if spec.reset_mode == "none":
        return h
    fired = h >= spec.v_th
    if spec.reset_mode == "hard":
        return torch.where(fired, torch.full_like(h, spec.v_reset), h)
    return torch.where(fired, h - spec.v_th, h)


def _torch_forward(x, decay_t, v_init_t, spec):
    """Returns spikes, v_last, h (always: the backward needs it), v_rec (empty unless recording)."""
    decay = decay_t.detach() if decay_t is not None else spec.decay
    T, step = x.shape[0], x[0]
    h = _empty_steps(step, T)
    v = v_init_t.detach().expand_as(step) if v_init_t is not None else torch.full_like(step, spec.v_init)
    v_rec = _empty_steps(step, T) if spec.record else x.new_empty(0)
    with torch.no_grad():
        for t in range(x.shape[0]):
            torch.mul(v, decay, out=h[t])  # h = decay * v + x, rounded like functional.charge
            h[t].add_(x[t])
            v = _reset(h[t], spec)
            if spec.record:
                v_rec[t] = v
        spikes = _empty_steps(step, T)
        torch.ge(h, spec.v_th, out=spikes)  # Theta(h - v_th): h >= v_th exactly when h - v_th >= 0
    return spikes, v.clone() if spec.reset_mode == "none" else v, h, v_rec


def _torch_backward(h, g_spikes, g_v_last, decay_t, v_init_t, spec, need_decay, need_v_init):
    """gh[t] = B[t] + gv[t] A[t] with B = g_spikes * sg' and A from the reset; gv[t-1] = decay * gh[t]."""
    decay = decay_t.detach() if decay_t is not None else spec.decay
    z = h - spec.v_th
    sg = spec.surrogate.grad(z)
    b = g_spikes * sg
    fired = (z >= 0).to(h.dtype)
    T = h.shape[0]
    if spec.reset_mode == "hard":
        a = 1 - fired if spec.detach_reset else (spec.v_reset - h) * sg + (1 - fired)
    elif spec.reset_mode == "soft":
        a = torch.ones_like(h) if spec.detach_reset else 1 - spec.v_th * sg
    else:
        a = torch.ones_like(h)
    a_decay = a * decay  # gh[t-1] = B[t-1] + gh[t] * decay * A[t-1]
    gx = _empty_steps(h[0], T)
    if g_v_last is not None:
        torch.addcmul(b[T - 1], g_v_last, a[T - 1], out=gx[T - 1])
    else:
        gx[T - 1] = b[T - 1]
    for t in range(T - 2, -1, -1):
        torch.addcmul(b[t], gx[t + 1], a_decay[t], out=gx[t])
    gvi = (gx[0] * decay).sum_to_size(v_init_t.shape) if need_v_init else None
    gd = None
    if need_decay:
        v_prev = torch.empty_like(h)
        v_prev[0] = v_init_t.detach() if v_init_t is not None else spec.v_init
        if T > 1:
            v_prev[1:] = _reset(h[:-1], spec)
        gd = (gx * v_prev).sum_to_size((1,) * (h.dim() - decay_t.dim()) + tuple(decay_t.shape)).reshape(
            decay_t.shape)
    return gx, gd, gvi


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
