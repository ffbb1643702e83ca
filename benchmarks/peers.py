"""The peer libraries' neurons, configured to compute what spikelab's computes, and a way to put them into the
same networks.

Semantics matched (SPEC section 1): decay 0.5 per step, threshold 1, hard reset to 0 with the reset's spike
detached, atan surrogate with alpha 2:

- snnTorch ``Leaky(beta=0.5, reset_mechanism="zero")`` (its default surrogate is atan, alpha 2), stepped in the
  usual per-step loop;
- SpikingJelly ``LIFNode(tau=2, decay_input=False, v_reset=0, detach_reset=True, surrogate=ATan(2),
  step_mode="m")`` (multi-step; on CPU in float32 it runs its own fused loop);
- Norse ``LIFBoxCell`` (no synaptic current), stepped in a loop, with ``dt * tau_mem_inv = 0.5``: it integrates
  ``v + 0.5 (x - v)``, so it sees twice spikelab's current. Its reset passes the gradient (``detach_reset=False``)
  and its SuperSpike surrogate is ``1 / (1 + |x|)^2`` (spikelab's ``fast_sigmoid`` with slope 1): it is checked
  against that spikelab neuron, and timed beside the others.

A network is made "the same network in library X" by :func:`with_peer_neurons`: a deep copy of the spikelab model
(same layers, weights, time-merged convolutions and tdBN, the static first layer computed once) whose spiking
layers are replaced by X's neuron. tdBN takes statistics over time and batch, which a whole-network per-step loop
cannot give, so every library runs the stateless layers on all steps at once; the neurons are what differ.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from spikelab import layers
from spikelab.neurons import LIF, BaseNeuron

DECAY, V_TH = 0.5, 1.0


def spikelab_lif() -> nn.Module:
    return LIF(DECAY, V_TH, "hard", "atan", detach_reset=True)


class SnnTorchLIF(nn.Module):
    """snnTorch ``Leaky`` over ``[T, B, ...]`` in its per-step loop (the state reset after the sequence, so that
    it does not hold the graph: what a careful user does, and needed to measure what the backward keeps)."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.leaky = snn.Leaky(beta=DECAY, threshold=V_TH, reset_mechanism="zero")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        mem = self.leaky.reset_mem()
        out = []
        for x in x_seq.unbind(0):
            s, mem = self.leaky(x, mem)
            out.append(s)
        self.leaky.reset_mem()  # Leaky keeps the last membrane (and with it the graph) until the next reset
        return torch.stack(out).to(x_seq.dtype)  # (its spikes are float32 even for float64 input)


class SpikingJellyLIF(nn.Module):
    """SpikingJelly's multi-step ``LIFNode``, reset before every sequence."""

    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.activation_based import neuron, surrogate

        self.node = neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, v_threshold=V_TH, v_reset=0.0,
                                   detach_reset=True, surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        self.node.reset()
        spikes = self.node(x_seq)
        self.node.reset()  # the node keeps the last membrane (and with it the graph) until the next reset
        return spikes


class NorseLIFBox(nn.Module):
    """Norse's ``LIFBoxCell`` over ``[T, B, ...]`` in a loop (``v <- v + 0.5 (x - v)``, then threshold, reset)."""

    def __init__(self) -> None:
        super().__init__()
        from norse.torch.functional.lif_box import LIFBoxParameters
        from norse.torch.module.lif_box import LIFBoxCell

        p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 - DECAY), v_th=torch.as_tensor(V_TH),
                             v_reset=torch.as_tensor(0.0), v_leak=torch.as_tensor(0.0), method="super")
        self.cell = LIFBoxCell(p, dt=1.0)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        state, out = None, []
        for x in x_seq.unbind(0):
            s, state = self.cell(x, state)
            out.append(s)
        return torch.stack(out)


def spikelab_like_norse() -> nn.Module:
    """The spikelab neuron Norse's ``LIFBoxCell`` computes (given half of Norse's input)."""
    from spikelab import surrogate

    return LIF(DECAY, V_TH, "hard", surrogate.get("fast_sigmoid", slope=1.0), detach_reset=False)


LIF_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "snntorch": SnnTorchLIF,
    "spikingjelly": SpikingJellyLIF,
    "norse": NorseLIFBox,
}

#: the input scale each library needs to compute spikelab's neuron (Norse integrates half its input)
INPUT_SCALE = {"snntorch": 1.0, "spikingjelly": 1.0, "norse": 2.0}


def available(name: str) -> str:
    """'' if the peer imports and builds, else the reason."""
    try:
        LIF_LAYERS[name]()
        return ""
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"


def with_peer_neurons(model: nn.Module, peer: str) -> nn.Module:
    """A deep copy of ``model`` whose spiking layers are ``peer``'s neuron, whose spikelab max pooling and linear
    layers are PyTorch's ``nn.MaxPool2d`` and ``nn.Linear`` (the peers use those), and which keeps its saved
    activations as PyTorch does (no bit-packing). Parameters and buffers are copied."""
    twin = copy.deepcopy(model)
    twin.pack_binary = False  # spikelab's bit-packing of saved spikes is not the peer's
    make = LIF_LAYERS[peer]
    for name, module in list(twin.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, BaseNeuron):
                setattr(module, child_name, make())
            elif isinstance(child, layers.MaxPool2d):
                child.__class__ = nn.MaxPool2d  # same attributes: PyTorch's pooling
            elif isinstance(child, layers.Linear):
                child.__class__ = nn.Linear  # same parameters: PyTorch's dense matmul
    return twin
