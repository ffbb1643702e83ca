"""The two fast backends of :mod:`spikelab.neurons.fused`: the native kernel's glue (``ctypes`` calls, the
surrogate probe) and the portable PyTorch implementation. Each backend is a ``forward`` returning
``(spikes, v_last, h_rec, v_rec)`` and a ``backward`` returning ``(grad_x, grad_decay, grad_v_init)``."""
from __future__ import annotations

import ctypes
import dataclasses
from dataclasses import dataclass

import torch

from spikelab import _native
from spikelab import surrogate as _surrogate

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


@dataclass(frozen=True)
class _Spec:
    """A call's settings (a float decay, or ``decay=None`` when it is a tensor input; ``v_init`` used where no
    tensor is given) and the backend chosen for it."""

    v_th: float
    reset_mode: str
    surrogate: _surrogate.Surrogate
    v_reset: float
    detach_reset: bool
    v_init: float  # used where no v_init tensor is given
    record: bool
    decay: float | None  # None: the decay is a tensor input
    backend: str


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

