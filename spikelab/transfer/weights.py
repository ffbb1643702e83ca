"""Explicit weight transfer between networks (SPEC section 4): a key map, a shape check per tensor, a copy under
``no_grad``; and the event stem of pipe-D."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

import torch
from torch import nn

from spikelab.layers import SeqToANN


def _patterns(value: Iterable[str] | str, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a list of key names or patterns, got {type(value).__name__}") from None
    for p in out:
        if not isinstance(p, str) or not p:
            raise TypeError(f"{name} entries must be non-empty strings (key names or fnmatch patterns), got {p!r}")
    return out


def _listed(key: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(key, p) for p in patterns)


def _some(keys: list[str], n: int = 4) -> str:
    return ", ".join(repr(k) for k in keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def transfer_weights(
    src: nn.Module,
    dst: nn.Module,
    key_map: Mapping[str, str] | None = None,
    *,
    src_only: Iterable[str] | str = (),
    dst_only: Iterable[str] | str = (),
) -> dict[str, str]:
    """Copy every parameter and batch-norm buffer (every ``state_dict`` entry) of ``src`` into ``dst``.

    Source key ``k`` goes to destination key ``key_map.get(k, k)``: the identity by default, which a model and its
    ANN twin satisfy. Every pair's shapes are checked before anything is copied, so a failed transfer leaves
    ``dst`` untouched; the copy runs under ``torch.no_grad()`` (values are cast to ``dst``'s dtype and device).

    Args:
        src, dst: the networks (e.g. the pretrained ANN twin and the SNN).
        key_map: ``{source key: destination key}`` for the keys whose names differ; other keys map to themselves.
        src_only: source keys expected to have no destination (names or ``fnmatch`` patterns, e.g. ``"head.*"``):
            they are left out of the copy, even where ``dst`` has a key of that name.
        dst_only: destination keys expected to get no source (e.g. a new head, PLIF's ``"*.w"``): they keep their
            values, even where ``src`` has a key of that name (list it in ``src_only`` too, or it has no
            destination).

    Returns:
        ``{destination key: source key}`` of everything copied, in ``dst``'s key order.

    Raises:
        ValueError: a shape mismatch (naming both keys and both shapes); layers that do not correspond (source
            keys without a destination, or destination keys without a source, not listed as expected); a
            ``key_map`` naming keys that do not exist, or mapping two sources onto one destination.
        TypeError: ``src``/``dst`` not modules, or a malformed ``key_map``.
    """
    for arg, m in (("src", src), ("dst", dst)):
        if not isinstance(m, nn.Module):
            raise TypeError(f"{arg} must be an nn.Module, got {type(m).__name__}")
    key_map = dict(key_map or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in key_map.items()):
        raise TypeError("key_map must map source key names (str) to destination key names (str)")
    src_only, dst_only = _patterns(src_only, "src_only"), _patterns(dst_only, "dst_only")
    s_sd, d_sd = src.state_dict(), dst.state_dict()
    unknown_src = sorted(set(key_map) - set(s_sd))
    unknown_dst = sorted(set(key_map.values()) - set(d_sd))
    if unknown_src or unknown_dst:
        raise ValueError(f"key_map names keys that do not exist: source {unknown_src or 'none'}, destination "
                         f"{unknown_dst or 'none'}")
    pairs: dict[str, str] = {}  # dst key -> src key
    no_dst: list[str] = []
    for k in s_sd:
        if _listed(k, src_only):
            continue
        d = key_map.get(k, k)
        if d not in d_sd or _listed(d, dst_only):
            no_dst.append(k)
            continue
        if d in pairs:
            raise ValueError(f"key_map maps both {pairs[d]!r} and {k!r} onto destination key {d!r}")
        pairs[d] = k
    no_src = [d for d in d_sd if d not in pairs and not _listed(d, dst_only)]
    if no_dst or no_src:
        raise ValueError(
            "the layers of src and dst do not correspond: "
            + (f"{len(no_dst)} source key(s) have no destination ({_some(no_dst)})" if no_dst else "")
            + ("; " if no_dst and no_src else "")
            + (f"{len(no_src)} destination key(s) get no source ({_some(no_src)})" if no_src else "")
            + "; map renamed keys with key_map, or list the expected ones in src_only / dst_only")
    for d, k in pairs.items():
        if s_sd[k].shape != d_sd[d].shape:
            name = repr(k) if k == d else f"{k!r} -> {d!r}"
            raise ValueError(f"shape mismatch at key {name}: source {tuple(s_sd[k].shape)}, destination "
                             f"{tuple(d_sd[d].shape)}")
    with torch.no_grad():
        for d, k in pairs.items():
            d_sd[d].copy_(s_sd[k])
    return {d: pairs[d] for d in d_sd if d in pairs}


def event_stem(conv: nn.Conv2d | SeqToANN, channels: int = 2) -> nn.Conv2d | SeqToANN:
    """A first conv for ``channels``-channel event frames (ON/OFF polarity) from a static model's first conv.

    The new conv has the same output channels, kernel, stride, padding and dilation; each of its input channels is
    initialised to the mean of the pretrained kernels over their input channels (``w[:, c] = mean_i w_old[:, i]``
    for every c: SPEC section 4, done properly where the official code re-initialised it by a bug); the bias, if
    any, is copied. The result is a fresh module (``conv`` is left as it is), wrapped in a :class:`SeqToANN` if
    ``conv`` was.

    Args:
        conv: an ``nn.Conv2d`` with weight ``[O, C, k, k]`` (``groups=1``), or a ``SeqToANN`` around one.
        channels: input channels of the event frames (2: ON and OFF).

    Raises:
        TypeError: ``conv`` is not a Conv2d (or a SeqToANN around one).
        ValueError: grouped convolution, or ``channels < 1``.
    """
    inner = conv.module if isinstance(conv, SeqToANN) else conv
    if not isinstance(inner, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d or a SeqToANN around one (a model's stem.conv), got "
                        f"{type(inner).__name__}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be an int >= 1, got {channels!r}")
    if inner.groups != 1:
        raise ValueError(f"event_stem needs an ungrouped conv (groups=1), got groups={inner.groups}")
    new = nn.Conv2d(channels, inner.out_channels, inner.kernel_size, inner.stride, inner.padding, inner.dilation,
                    bias=inner.bias is not None, padding_mode=inner.padding_mode,
                    device=inner.weight.device, dtype=inner.weight.dtype)
    with torch.no_grad():
        mean = inner.weight.mean(dim=1, keepdim=True)  # [O, 1, k, k]
        new.weight.copy_(mean.expand_as(new.weight))
        if inner.bias is not None:
            new.bias.copy_(inner.bias)
    return SeqToANN(new) if isinstance(conv, SeqToANN) else new
