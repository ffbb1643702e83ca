"""The fused neuron engine against the reference definition, spikelab.neurons.functional (SPEC section 1).

Oracle: ``functional.neuron_sequence`` with autograd through its time loop. The native kernel must give the same
spikes, traces and gradients bit for bit (sigmoid: within a few ulps, see ``test_sigmoid_reference_is_layout_
dependent``); the torch backend the same spikes and traces and gradients equal up to rounding.
"""
import itertools
import os
import subprocess
import sys

import pytest
import torch
from _support import require

from spikelab import _native
from spikelab import surrogate as S
from spikelab.neurons import functional as F
from spikelab.neurons import fused

SURROGATES = [S.get("atan", alpha=3.0), S.get("sigmoid"), S.get("fast_sigmoid", slope=10.0),
              S.get("triangle", gamma=0.7), S.get("rectangle", width=0.8)]
BACKENDS = ["native", "torch"]


def native_available() -> bool:
    return _native.load() is not None


def _run(fn, x, decay, v_init, *, use_v=True, **kw):
    """Forward and backward of a loss that reads spikes and (optionally) the last membrane; returns results
    and the gradients of x, decay and v_init (None where they are floats)."""
    x = x.detach().clone().requires_grad_()
    d = decay.detach().clone().requires_grad_() if isinstance(decay, torch.Tensor) else decay
    vi = v_init.detach().clone().requires_grad_() if isinstance(v_init, torch.Tensor) else v_init
    r = fn(x, decay=d, v_init=vi, **kw)
    w = torch.randn(r.spikes.shape, generator=torch.Generator().manual_seed(7), dtype=r.spikes.dtype)
    loss = (r.spikes * w).sum()
    if use_v:
        loss = loss + (r.v * 0.3).sum()
    loss.backward()
    grads = [x.grad] + [t.grad if isinstance(t, torch.Tensor) else None for t in (d, vi)]
    return r, grads


def _compare(backend, dtype, sg, mode, detach, *, decay=0.6, v_init=0.1, v_reset=0.0, shape=(16, 3, 300),
             record=True, use_v=True):
    if backend == "native":
        require(native_available(), f"native kernels: {_native.status()['reason']}")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=dtype) * 0.8 + 0.4
    kw = dict(v_th=0.9, reset_mode=mode, surrogate=sg, v_reset=v_reset, detach_reset=detach, record=record)
    ref, ref_g = _run(F.neuron_sequence, x, decay, v_init, use_v=use_v, **kw)
    with fused.engine(backend):
        out, out_g = _run(fused.neuron_sequence, x, decay, v_init, use_v=use_v, **kw)
    assert torch.equal(out.spikes, ref.spikes)
    assert torch.equal(out.v, ref.v)
    if record:
        assert torch.equal(out.h_seq, ref.h_seq) and torch.equal(out.v_seq, ref.v_seq)
    else:
        assert out.h_seq is None and out.v_seq is None
    exact = backend == "native" and not isinstance(sg, S.Sigmoid)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
    for name, a, b in zip(("x", "decay", "v_init"), out_g, ref_g):
        assert (a is None) == (b is None), name
        if a is None:
            continue
        if exact and name != "decay":  # the decay's gradient is a sum over neurons: summation order differs
            assert torch.equal(a, b), f"grad of {name} differs by {(a - b).abs().max()}"
        else:
            torch.testing.assert_close(a, b, **tol, msg=lambda m: f"grad of {name}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("mode,detach", list(itertools.product(["hard", "soft", "none"], [False, True])))
@pytest.mark.parametrize("sg", SURROGATES, ids=lambda s: s.name)
def test_every_mode_and_surrogate_matches_reference(backend, dtype, mode, detach, sg):
    _compare(backend, dtype, sg, mode, detach)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("mode", ["hard", "soft", "none"])
def test_learned_decay_v_init_tensor_and_v_reset(backend, dtype, mode):
    # PLIF-style decay tensor with a gradient, a per-neuron initial membrane with a gradient, v_reset != 0
    v_init = torch.rand(3, 300, generator=torch.Generator().manual_seed(1), dtype=dtype)
    for detach in (False, True):
        _compare(backend, dtype, S.get("atan"), mode, detach, decay=torch.tensor(0.7, dtype=dtype),
                 v_init=v_init, v_reset=-0.3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_record_or_last_membrane_and_with_long_sequences(backend):
    _compare(backend, torch.float32, S.get("triangle"), "hard", False, record=False, use_v=False)
    _compare(backend, torch.float64, S.get("atan"), "soft", True, shape=(200, 2, 33), record=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts_channels_last_strided_and_empty(backend):
    if backend == "native":
        require(native_available(), f"native kernels: {_native.status()['reason']}")
    x = torch.randn(5, 2, 3, 4, 6, dtype=torch.float64)
    channels_last = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)
    assert fused.time_major_dense(channels_last) and not channels_last.is_contiguous()
    kw = dict(decay=0.5, v_th=0.3, reset_mode="hard", surrogate=S.get("atan"))
    for inp in (channels_last, x[:, ::2], x.transpose(0, 1), x[:, :0]):
        a, b = inp.detach().clone().requires_grad_(), inp.detach().clone().requires_grad_()
        ra = F.neuron_sequence(a, **kw)
        with fused.engine(backend):
            rb = fused.neuron_sequence(b, **kw)
        assert rb.spikes.shape == ra.spikes.shape and torch.equal(rb.spikes, ra.spikes)
        (ra.spikes.sum() + ra.v.square().sum()).backward()
        (rb.spikes.sum() + rb.v.square().sum()).backward()
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-15)
    with fused.engine(backend):  # the output keeps a channels-last input's layout
        assert fused.neuron_sequence(channels_last, **kw).spikes.stride() == channels_last.stride()
    # one step repeated over time (a static stem's output): read in place, gradients summed over time
    step = channels_last[0]
    a, b = step.detach().clone().requires_grad_(), step.detach().clone().requires_grad_()
    ra = F.neuron_sequence(a.expand(7, *step.shape), **kw)
    with fused.engine(backend):
        rb = fused.neuron_sequence(b.expand(7, *step.shape), **kw)
    assert torch.equal(rb.spikes, ra.spikes) and torch.equal(rb.v, ra.v)
    (ra.spikes * torch.arange(7.0).view(7, 1, 1, 1, 1)).sum().backward()
    (rb.spikes * torch.arange(7.0).view(7, 1, 1, 1, 1)).sum().backward()
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-14, atol=1e-15)


class _ShiftedATan(S.ATan):
    """A user-defined surrogate: its own grad, so the kernel cannot use its built-in formula."""

    name = "shifted_atan"

    def grad(self, x):
        return super().grad(x - 0.1) * 0.5


def test_custom_surrogate_gets_its_own_derivative_bit_for_bit():
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    sg = _ShiftedATan(2.0)
    assert fused.native_surrogate(sg, torch.float32) == fused._SG_GIVEN
    for mode, detach in itertools.product(["hard", "soft"], [False, True]):
        _compare("native", torch.float32, sg, mode, detach)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_builtin_surrogates_run_inside_the_kernel(dtype):
    # each built-in formula in kernels_lif.h agrees with surrogate.grad (else the slower given-derivative path
    # would be used: still exact, but this test flags that kernels_lif.h needs the new formula)
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    for sg in SURROGATES + [S.get(n) for n in S.names()]:
        assert fused.native_surrogate(sg, dtype) != fused._SG_GIVEN, sg


def test_sigmoid_reference_is_layout_dependent():
    # why sigmoid is compared within ulps: torch's own sigmoid gives the same value a different last bit
    # depending on where it sits in a tensor (vectorised body vs scalar tail), so no kernel can match every layout
    z = torch.randn(1000, generator=torch.Generator().manual_seed(3))
    sg = S.get("sigmoid")
    whole = sg.grad(z)
    one_by_one = torch.cat([sg.grad(z[i:i + 1]) for i in range(z.numel())])
    assert not torch.equal(whole, one_by_one)
    torch.testing.assert_close(whole, one_by_one, rtol=4 * torch.finfo(z.dtype).eps, atol=0)


def test_torch_backend_in_bfloat16_gives_the_reference_spikes():
    x = (torch.randn(12, 4, 64) * 0.8 + 0.5).bfloat16()
    kw = dict(decay=0.5, v_th=1.0, reset_mode="hard", surrogate=S.get("atan"), record=True)
    ref = F.neuron_sequence(x, **kw)
    with fused.engine("torch"):
        out = fused.neuron_sequence(x, **kw)
    assert torch.equal(out.spikes, ref.spikes) and torch.equal(out.h_seq, ref.h_seq)


@pytest.mark.parametrize("mode,detach", list(itertools.product(["hard", "soft", "none"], [False, True])))
def test_native_bfloat16_is_the_float32_neuron_rounded(mode, detach):
    # bfloat16 tensors, float32 membrane: exactly the reference in float32 on the same (bfloat16) input, with
    # spikes, traces, last membrane and input gradients rounded to bfloat16
    require(native_available(), f"native kernels: {_native.status()['reason']}")
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(20, 3, 300, generator=g) * 0.8 + 0.4).bfloat16()
    w = torch.randn(x.shape, generator=g).bfloat16()
    for sg in (S.get("atan"), S.get("triangle", gamma=0.5), _ShiftedATan(2.0)):
        kw = dict(decay=0.6, v_th=0.9, reset_mode=mode, surrogate=sg, detach_reset=detach, record=True)
        a, b = x.float().requires_grad_(), x.clone().requires_grad_()
        ref = F.neuron_sequence(a, **kw)
        with fused.engine("native"):
            out = fused.neuron_sequence(b, **kw)
        assert out.spikes.dtype == torch.bfloat16
        for name in ("spikes", "v", "h_seq", "v_seq"):
            assert torch.equal(getattr(out, name), getattr(ref, name).bfloat16()), name
        (ref.spikes * w.float()).sum().backward()
        (out.spikes * w).sum().backward()
        assert torch.equal(b.grad, a.grad.bfloat16())


def test_engine_selection_and_forced_engines():
    x = torch.rand(3, 2, 4)
    kw = dict(decay=0.5, v_init=0.0, surrogate=S.get("atan"))
    assert fused.get_engine() == "auto"
    with fused.engine("reference"):
        assert fused.choose_backend(x, **kw) == "reference"
    with fused.engine("torch"):
        assert fused.choose_backend(x, **kw) == "torch"
        with pytest.raises(RuntimeError, match="engine 'torch' cannot run"):
            fused.choose_backend(x.long(), **kw)
    with fused.engine("native"):
        with pytest.raises(RuntimeError, match="engine 'native' cannot run"):
            fused.choose_backend(x.half(), **kw)
    # auto falls back to torch where the kernel does not apply (float16), and never raises
    assert fused.choose_backend(x.half(), **kw) == "torch"
    assert fused.get_engine() == "auto"
    with pytest.raises(ValueError, match="engine must be one of"):
        fused.set_engine("fast")
    with pytest.raises(ValueError, match="reset must be one of"):
        fused.neuron_sequence(x, decay=0.5, v_th=1.0, reset_mode="zero", surrogate=S.get("atan"))


def test_fallback_when_disabled_or_no_compiler(monkeypatch, tmp_path):
    # SPIKELAB_NATIVE=0 and a missing compiler both leave a clean fallback with the reason, and the auto engine
    # then runs the torch backend with the reference's spikes
    try:
        monkeypatch.setenv("SPIKELAB_NATIVE", "0")
        _native.reset()
        assert _native.load() is None
        assert "SPIKELAB_NATIVE=0" in _native.status()["reason"]
        monkeypatch.delenv("SPIKELAB_NATIVE")
        monkeypatch.setenv("SPIKELAB_CACHE_DIR", str(tmp_path))
        monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
        _native.reset()
        assert _native.load() is None
        assert "no C compiler" in _native.status()["reason"]
        x = torch.rand(6, 2, 5, dtype=torch.float64) * 2
        kw = dict(decay=0.5, v_th=1.0, reset_mode="soft", surrogate=S.get("atan"))
        assert fused.choose_backend(x, decay=0.5, v_init=0.0, surrogate=S.get("atan")) == "torch"
        assert torch.equal(fused.neuron_sequence(x, **kw).spikes, F.neuron_sequence(x, **kw).spikes)
    finally:
        monkeypatch.undo()
        _native.reset()


def test_fallback_when_the_compiler_fails(monkeypatch, tmp_path):
    # a compiler that exists but fails (a broken toolchain) is a clean fallback too, with the compiler's message;
    # `python -m spikelab._native` (what `make venv` runs) still exits 0 and says the portable path is used
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\necho 'fatal: broken toolchain' >&2\nexit 1\n")
    broken.chmod(0o755)
    try:
        monkeypatch.setenv("SPIKELAB_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("CC", str(broken))
        _native.reset()
        assert _native.load() is None
        reason = _native.status()["reason"]
        assert "the C compiler failed" in reason and "broken toolchain" in reason, reason
        assert not list((tmp_path / "cache").rglob("*.so"))  # nothing half-built is left to be loaded later
        x = torch.rand(5, 3, 4, dtype=torch.float32) * 2
        kw = dict(decay=0.5, v_th=1.0, reset_mode="hard", surrogate=S.get("atan"))
        assert torch.equal(fused.neuron_sequence(x, **kw).spikes, F.neuron_sequence(x, **kw).spikes)
        env = dict(os.environ)
        res = subprocess.run([sys.executable, "-m", "spikelab._native"], capture_output=True, text=True,
                             timeout=120, env=env)
        assert res.returncode == 0, res.stderr
        assert "unavailable, the portable PyTorch path is used" in res.stdout and "broken toolchain" in res.stdout
    finally:
        monkeypatch.undo()
        _native.reset()


def test_fresh_build_into_an_empty_cache(monkeypatch, tmp_path):
    # the first use compiles kernels.c into the cache folder; the second process-level load reuses it
    require(_native._compiler() is not None, "a C compiler (cc, gcc or clang) to build the native kernels")
    try:
        monkeypatch.setenv("SPIKELAB_CACHE_DIR", str(tmp_path))
        _native.reset()
        assert _native.load() is not None, _native.status()["reason"]
        st = _native.status()
        assert st["built_now"] and st["path"].startswith(str(tmp_path))
        _native.reset()
        assert _native.load() is not None and not _native.status()["built_now"]
    finally:
        monkeypatch.undo()
        _native.reset()


@pytest.mark.gpu
def test_cuda_torch_backend_matches_reference():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    x = torch.randn(20, 4, 256, device="cuda", dtype=torch.float64) * 0.8 + 0.4
    for mode, detach in itertools.product(["hard", "soft", "none"], [False, True]):
        kw = dict(decay=0.6, v_th=0.9, reset_mode=mode, surrogate=S.get("triangle"), detach_reset=detach)
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ra = F.neuron_sequence(a, **kw)
        with fused.engine("torch"):
            rb = fused.neuron_sequence(b, **kw)
        assert torch.equal(ra.spikes, rb.spikes)
        ra.spikes.sum().backward()
        rb.spikes.sum().backward()
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form,decay_input", [("fang2021", True), ("fang2021", False), ("decay", False)])
def test_modules_on_the_fused_engine_match_the_reference_loop(backend, form, decay_input):
    # BaseNeuron.run dispatches to the fused engine: PLIF (learned decay, input scaling), LIF with a v_init state
    # and recording give the reference loop's spikes, traces and gradients (w's within summation order)
    if backend == "native":
        require(native_available(), f"native kernels: {_native.status()['reason']}")
    from spikelab.neurons import LIF, PLIF

    g = torch.Generator().manual_seed(4)
    x = torch.randn(12, 3, 40, generator=g, dtype=torch.float64) + 0.5
    w_out = torch.randn(x.shape, generator=g, dtype=torch.float64)
    for make in (lambda: PLIF(0.6, 0.8, "hard", "triangle", form=form, decay_input=decay_input, record=True),
                 lambda: LIF(0.7, 0.9, "soft", "atan", detach_reset=True, v_init=0.2, record=True)):
        results = []
        for engine in ("reference", backend):
            torch.manual_seed(0)
            neuron = make().double()
            xi = x.clone().requires_grad_()
            with fused.engine(engine):
                s = neuron(xi)
            (s * w_out).sum().backward()
            grads = [xi.grad] + [p.grad for p in neuron.parameters()]
            results.append((s, neuron.h_seq, neuron.v_seq, grads))
        (s0, h0, v0, g0), (s1, h1, v1, g1) = results
        assert torch.equal(s0, s1) and torch.equal(h0, h1) and torch.equal(v0, v1)
        for a, b in zip(g0, g1):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-13)
