"""Neuron settings, inputs and state at the module boundary: learnable settings are refused (not silently read as
floats), currents must be real floating-point tensors, and the step-by-step state behaves like module state
(deepcopy, pickling, dtype moves, state_dict)."""
import copy
import pickle

import pytest
import torch
from torch import nn

from spikelab import surrogate
from spikelab.encoding import latency, rate
from spikelab.layers import TdBatchNorm
from spikelab.neurons import IF, LIF, PLIF, NeuronConfig, neuron_sequence, neuron_step


def _learnable(value: float) -> nn.Parameter:
    return nn.Parameter(torch.tensor(value))


SETTINGS = [
    (LIF, "decay", 0.5), (LIF, "v_th", 1.0), (LIF, "v_reset", 0.0), (LIF, "v_init", 0.0),
    (IF, "v_th", 1.0), (IF, "v_reset", 0.0), (IF, "v_init", 0.0),
    (PLIF, "init_decay", 0.5), (PLIF, "v_th", 1.0), (PLIF, "v_reset", 0.0), (PLIF, "v_init", 0.0),
]


@pytest.mark.parametrize("cls, name, value", SETTINGS)
def test_learnable_neuron_settings_are_refused_with_a_pointer_to_plif(cls, name, value):
    # LIF(v_th=nn.Parameter(...)) used to become a float: out of .parameters(), never learning, no error
    with pytest.raises(TypeError, match=rf"{name} must be a number, got a tensor that requires grad.*PLIF"):
        cls(**{name: _learnable(value)})
    neuron = cls(**{name: torch.tensor(value)})  # a plain 0-d tensor is a number: read as a float
    assert list(neuron.parameters()) == ([neuron.w] if cls is PLIF else [])


@pytest.mark.parametrize("field", ["decay", "v_th", "v_reset", "v_init"])
def test_neuron_config_refuses_learnable_settings(field):
    with pytest.raises(TypeError, match=f"{field} must be a number.*requires grad"):
        NeuronConfig(**{field: _learnable(0.5)})


@pytest.mark.parametrize("build", [
    lambda p: TdBatchNorm(4, v_th=p), lambda p: TdBatchNorm(4, alpha=p),
    lambda p: rate(torch.rand(3), 2, gain=p), lambda p: latency(torch.rand(3), 2, threshold=p),
    lambda p: latency(torch.rand(3), 2, tau=p), lambda p: surrogate.get("atan", alpha=p),
    lambda p: surrogate.get("triangle", gamma=p),
])
def test_other_tensor_valued_settings_refuse_learnable_tensors(build):
    with pytest.raises(TypeError, match="requires grad"):
        build(_learnable(0.5))


@pytest.mark.parametrize("neuron", [LIF(), IF(), PLIF()], ids=["lif", "if", "plif"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8, torch.complex64])
def test_currents_must_be_real_floating_point(neuron, dtype):
    x = torch.ones(4, 2, 3, dtype=dtype)
    with pytest.raises(TypeError, match=r"x_seq must be a real floating-point tensor.*" + str(dtype)):
        neuron(x)
    with pytest.raises(TypeError, match="x must be a real floating-point tensor"):
        neuron.step(x[0])
    with pytest.raises(TypeError, match="v_init must be a real floating-point tensor"):
        neuron.run(torch.ones(4, 2, 3), v_init=torch.zeros(2, 3, dtype=dtype))
    kw = dict(decay=0.5, v_th=1.0, reset_mode="hard", surrogate=surrogate.get("atan"))
    with pytest.raises(TypeError, match="x_seq must be a real"):
        neuron_sequence(x, **kw)
    with pytest.raises(TypeError, match="x must be a real"):
        neuron_step(x[0], torch.zeros(2, 3), **kw)
    with pytest.raises(TypeError, match="x must be a real"):
        surrogate.get("atan")(x)


def test_every_float_dtype_runs():
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        s = LIF()(torch.full((3, 2), 0.75, dtype=dtype))
        assert s.dtype == dtype and s[:, 0].tolist() == [0.0, 1.0, 0.0]  # 0.75, 1.125 fires, 0.75


def test_v_init_tensor_must_match_the_input():
    with pytest.raises(ValueError, match="dtype and device"):
        LIF().run(torch.ones(3, 2), v_init=torch.zeros(2, dtype=torch.float64))


def _steps(neuron, xs):
    return torch.stack([neuron.step(x) for x in xs])


@pytest.mark.parametrize("make", [lambda: LIF(0.7, 0.8, "soft"), lambda: PLIF(0.6)], ids=["lif", "plif"])
def test_step_state_survives_deepcopy_and_pickle(make):
    # copy.deepcopy(lif) after lif.step(x) with x.requires_grad used to fail: a non-leaf tensor cannot be copied
    torch.manual_seed(4)
    x = torch.rand(8, 3, 5, dtype=torch.float64) * 1.2
    neuron = make().double()
    first = _steps(neuron, x[:4].clone().requires_grad_())
    assert neuron.v.grad_fn is not None  # the held membrane carries the graph of the steps so far
    twin = copy.deepcopy(neuron)
    thawed = pickle.loads(pickle.dumps(neuron))
    for other in (twin, thawed):
        assert other.v is not neuron.v and not other.v.requires_grad
        torch.testing.assert_close(other.v, neuron.v.detach(), rtol=0, atol=0)
    rest = _steps(neuron, x[4:])
    assert torch.equal(_steps(twin, x[4:]), rest) and torch.equal(_steps(thawed, x[4:]), rest)
    whole = make().double()(x)  # the copies continue exactly where the original was
    assert torch.equal(torch.cat([first.detach(), rest.detach()]), whole.detach())
    assert first.requires_grad  # the original keeps its graph: BPTT through step() still works
    first.sum().backward()


def test_step_state_follows_dtype_moves_and_stays_out_of_state_dict():
    torch.manual_seed(5)
    x = torch.rand(6, 2, 4, dtype=torch.float64) * 1.5
    lif = LIF(0.8, record=True)
    _steps(lif, x[:3].float())
    assert lif.v.dtype == torch.float32
    lif.double()  # module state moves with the module
    assert lif.v.dtype == torch.float64
    _steps(lif, x[3:])  # continues without a dtype clash
    with pytest.raises(ValueError, match="held state.*reset_state"):
        lif.step(x[0].float())
    lif(x)  # recorded traces are state too
    lif.half()
    assert lif.v_seq.dtype == lif.h_seq.dtype == lif.v.dtype == torch.float16
    assert lif.state_dict() == {} and set(dict(lif.named_buffers())) == {"v", "h_seq", "v_seq"}
    assert list(PLIF().state_dict()) == ["w"]  # the membrane is not a weight: checkpoints hold no batch state
    lif.reset_state()
    assert lif.v is None and list(lif.named_buffers()) == []


def test_neuron_config_exposes_v_init_and_plif_form():
    lif = NeuronConfig(v_init=0.4, v_reset=0.2, decay=0.5).build(record=True)
    assert lif.v_init == 0.4 and lif.v_reset == 0.2
    lif(torch.full((2, 1), 0.1))
    torch.testing.assert_close(lif.h_seq.flatten(), torch.tensor([0.5 * 0.4 + 0.1, 0.5 * 0.3 + 0.1]))
    plif = NeuronConfig(kind="plif", plif_form="decay", plif_decay_input=False).build()
    assert isinstance(plif, PLIF) and plif.form == "decay" and not plif.decay_input
    default = NeuronConfig(kind="plif").build()
    assert default.form == "fang2021" and default.decay_input  # the published form is the default
    with pytest.raises(ValueError, match="kind='plif' only"):
        NeuronConfig(kind="lif", plif_decay_input=False)
    with pytest.raises(ValueError, match="'fang2021', 'decay'"):
        NeuronConfig(kind="plif", plif_form="sigmoid")
    with pytest.raises(TypeError, match="decay_input"):
        PLIF(decay_input=1)
