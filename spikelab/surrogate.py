"""Surrogate gradients: a Heaviside step forward, a smooth derivative backward (SPEC section 2).

Every surrogate is a small object with

- ``primitive(x)``: the smooth function sigma(x) that the step is approximated by,
- ``grad(x)``: its closed-form derivative sigma'(x), used in the backward pass,
- ``__call__(x)``: the spike ``Theta(x)`` forward (``Theta(x) = 1`` for ``x >= 0``, else 0) whose backward
  multiplies the incoming gradient by ``grad(x)``.

``x = h - v_th`` is the membrane potential's distance from threshold. ``get(name, **params)`` builds one from the
registry::

    >>> from spikelab import surrogate
    >>> sg = surrogate.get("triangle", gamma=0.5)
    >>> sg
    Triangle(gamma=0.5)

All five are written so that no finite input, float32 or float64 (and float16 or bfloat16 under mixed precision),
gives NaN or inf. That needs bounded parameters: every width parameter must lie in :data:`PARAM_RANGE`
(``[1e-4, 1e4]``); a rectangle of width ``1e-40`` would have a height of ``1e40``, which no float32 holds.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from spikelab._checks import check_choice, check_float_tensor, check_positive

__all__ = [
    "Surrogate", "ATan", "Sigmoid", "FastSigmoid", "Triangle", "Rectangle", "get", "names", "heaviside", "PARAM_RANGE",
]

#: The accepted range of every surrogate's width parameter. Inside it the peak ``sigma'(0)`` and every
#: intermediate value stay finite in float16, bfloat16, float32 and float64 (practical choices lie between about
#: 0.05 and 500); outside it they under- or overflow.
PARAM_RANGE = (1e-4, 1e4)


def _check_param(value: float, name: str) -> float:
    v = check_positive(value, name)
    low, high = PARAM_RANGE
    if not low <= v <= high:
        raise ValueError(
            f"{name} must be in [{low:g}, {high:g}] (outside it the surrogate's gradient under- or overflows in "
            f"float16/float32), got {value}"
        )
    return v


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """The spike step ``Theta(x)``: 1 where ``x >= 0``, else 0, in ``x``'s dtype."""
    return (x >= 0).to(x.dtype)


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward; backward ``grad_out * surrogate.grad(x)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, surrogate: "Surrogate") -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class. Subclasses set ``name`` and ``width_param`` and implement ``primitive`` and ``grad``.

    ``width_param`` names the parameter that sets the surrogate's width (a UI slider moves it); a larger
    ``alpha``/``slope`` means narrower, a larger ``gamma``/``width`` means wider.
    """

    name: str = ""
    width_param: str = ""

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """The smooth function sigma(x) whose derivative is :meth:`grad`."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The closed-form derivative sigma'(x) used in the backward pass."""
        raise NotImplementedError

    @property
    def params(self) -> dict[str, float]:
        """The surrogate's parameters, e.g. ``{"alpha": 2.0}``."""
        return {self.width_param: getattr(self, self.width_param)}

    @property
    def peak(self) -> float:
        """sigma'(0), the height of the surrogate derivative."""
        return float(self.grad(torch.zeros((), dtype=torch.float64)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "x")
        return _SpikeFunction.apply(x, self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.params.items())))


class ATan(Surrogate):
    """Arctangent surrogate (snnTorch default, SpikingJelly).

    sigma(x) = arctan(pi/2 * alpha * x) / pi + 1/2;  sigma'(x) = (alpha/2) / (1 + (pi/2 * alpha * x)^2);
    peak alpha/2.
    """

    name = "atan"
    width_param = "alpha"

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = _check_param(alpha, "alpha")

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        # (pi/2 alpha x)^2 overflows to inf only for |x| > ~1e19 (float32); 1 / inf = 0, never NaN.
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)


class Sigmoid(Surrogate):
    """Logistic surrogate (SpikingJelly default).

    sigma(x) = sg(alpha x);  sigma'(x) = alpha * sg(alpha x) * (1 - sg(alpha x));  peak alpha/4.
    ``torch.sigmoid`` is evaluated stably, so large ``|x|`` gives 0, never NaN.
    """

    name = "sigmoid"
    width_param = "alpha"

    def __init__(self, alpha: float = 4.0) -> None:
        self.alpha = _check_param(alpha, "alpha")

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.alpha * x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        sg = torch.sigmoid(self.alpha * x)
        return self.alpha * sg * (1 - sg)


class FastSigmoid(Surrogate):
    """SuperSpike's fast sigmoid (Zenke and Ganguli; snnTorch).

    sigma'(x) = 1 / (1 + slope |x|)^2, peak 1; its primitive is sigma(x) = x / (1 + slope |x|) + 1/2, which
    spans only ``1/2 +- 1/slope``: the surrogate is not normalised to a unit step (its area is 2/slope).
    """

    name = "fast_sigmoid"
    width_param = "slope"

    def __init__(self, slope: float = 25.0) -> None:
        self.slope = _check_param(slope, "slope")

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return x / (1 + self.slope * x.abs()) + 0.5

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return 1 / (1 + self.slope * x.abs()) ** 2


class Triangle(Surrogate):
    """Triangle surrogate (TET): sigma'(x) = (1/gamma^2) * max(0, gamma - |x|), peak 1/gamma.

    Primitive: 0 below -gamma, (x + gamma)^2 / (2 gamma^2) on [-gamma, 0), 1 - (gamma - x)^2 / (2 gamma^2) on
    [0, gamma), 1 above.
    """

    name = "triangle"
    width_param = "gamma"

    def __init__(self, gamma: float = 1.0) -> None:
        self.gamma = _check_param(gamma, "gamma")

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma
        inside = x.abs() < g
        u = torch.where(inside, x, torch.zeros_like(x)) / g  # in (-1, 1); zero outside keeps autograd finite
        rising = (u + 1) ** 2 / 2
        falling = 1 - (1 - u) ** 2 / 2
        return torch.where(inside, torch.where(u < 0, rising, falling), heaviside(x))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        # (1/gamma) * max(0, 1 - |x|/gamma): no gamma^2, which would underflow for a narrow triangle
        return torch.clamp(1 - x.abs() / self.gamma, min=0) / self.gamma


class Rectangle(Surrogate):
    """Rectangle (straight-through window) surrogate: sigma'(x) = 1/width for |x| < width/2, else 0.

    Primitive: x/width + 1/2 inside the window, the step outside. Width 1 gives height 1 (pretraining paper).
    """

    name = "rectangle"
    width_param = "width"

    def __init__(self, width: float = 1.0) -> None:
        self.width = _check_param(width, "width")

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        inside = x.abs() < self.width / 2
        return torch.where(inside, x / self.width + 0.5, heaviside(x))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() < self.width / 2).to(x.dtype) / self.width


_REGISTRY: dict[str, type[Surrogate]] = {
    cls.name: cls for cls in (ATan, Sigmoid, FastSigmoid, Triangle, Rectangle)
}


def names() -> list[str]:
    """The registered surrogate names."""
    return list(_REGISTRY)


def get(name: "str | Surrogate", **params: float) -> Surrogate:
    """Build the surrogate registered as ``name`` with ``params`` (e.g. ``get("atan", alpha=3)``).

    A :class:`Surrogate` instance is returned unchanged (no params allowed then). Unknown names raise
    ``ValueError`` listing the valid ones; unknown parameters raise ``TypeError`` naming the accepted one.
    """
    if isinstance(name, Surrogate):
        if params:
            raise TypeError(f"params cannot be given with a Surrogate instance ({name!r}), got {sorted(params)}")
        return name
    check_choice(name, "surrogate", names())
    cls = _REGISTRY[name]
    unknown = set(params) - {cls.width_param}
    if unknown:
        raise TypeError(
            f"surrogate {name!r} takes the parameter {cls.width_param!r}, got unknown {sorted(unknown)}"
        )
    return cls(**params)
