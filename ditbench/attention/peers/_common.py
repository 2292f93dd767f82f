"""Plumbing shared by the peer kernels: input preparation, parameter checks that double as
registry refusals, seeded random draws, and streamed feature-map ("linear") attention.

Every peer kernel computes on the inputs' device; random matrices are drawn on the CPU in float64
from a seeded generator and then moved, so a seed gives the same sketch on every device.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..._checks import check_logit_range, check_output, check_qkv, resolve_scale, value_scale
from ...errors import KernelRefusal, check_normalisers

SUPPORTED_DTYPES = (torch.float32, torch.float64)
# Elements of one streamed tile (block rows × features): 2^22 floats = 16 MiB in float32.
TILE_ELEMENTS = 1 << 22


VALUE_HINT = "the value sums overflow: use float64 or smaller values"


##################################################################################
#                               Inputs and parameters                             #
##################################################################################

def prepare(q: Tensor, k: Tensor, v: Tensor, scale: float | None) -> tuple[Tensor, Tensor, Tensor, float]:
    """Validate ``q (..., n, d)``, ``k (..., m, d)``, ``v (..., m, dv)``; broadcast the leading dims.

    Returns the expanded ``(q, k, v)`` (views, no copy) and the resolved scale (None → 1/√d).
    """
    n, m, d, dv = check_qkv(q, k, v)
    if q.dtype not in SUPPORTED_DTYPES:
        raise KernelRefusal(f"peer kernels support dtypes {[str(t) for t in SUPPORTED_DTYPES]}, not {q.dtype}")
    s = resolve_scale(scale, d)
    check_logit_range(q, k, s)
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    return q.expand(*batch, n, d), k.expand(*batch, m, d), v.expand(*batch, m, dv), s


def int_reasons(name: str, value: object, minimum: int, maximum: int | None = None, why_max: str = "") -> list[str]:
    """Readable reasons why ``value`` is not an integer in [minimum, maximum] (empty when it is)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{name}={value!r} must be an integer"]
    if value < minimum:
        return [f"{name}={value} must be ≥ {minimum}"]
    if maximum is not None and value > maximum:
        return [f"{name}={value} must be ≤ {maximum}{' (' + why_max + ')' if why_max else ''}"]
    return []


def raise_if(reasons: list[str]) -> None:
    """Turn refusal reasons (the same ones ``Kernel.limits`` reports) into one ValueError."""
    if reasons:
        raise ValueError("; ".join(reasons))


def rows_per_tile(width: int) -> int:
    """Rows of a (rows, width) tile that keep it near :data:`TILE_ELEMENTS` elements."""
    return max(1, TILE_ELEMENTS // max(width, 1))


##################################################################################
#                                  Randomness                                    #
##################################################################################

def cpu_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (draws are then moved to the inputs' device)."""
    return torch.Generator().manual_seed(seed)


def gaussian(shape: tuple[int, ...], gen: torch.Generator, like: Tensor) -> Tensor:
    """Standard normal draws of ``shape`` in float64 on the CPU, cast to ``like``'s dtype/device."""
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


##################################################################################
#                           Normalisers and linear attention                      #
##################################################################################

def divide_by_normaliser(num: Tensor, den: Tensor, kernel: str) -> Tensor:
    """``num (..., b, dv) / den (..., b, 1)``, raising :class:`NormaliserError` if any den ≤ 0 or is not finite."""
    bad = ~(torch.isfinite(den) & (den > 0))
    if bool(bad.any()):
        check_normalisers(float(den[bad].min()), kernel=kernel, bad=int(bad.sum()), total=den.numel())
    return num / den


QueryFeatures = Callable[[Tensor], Tensor]
KeyFeatures = Callable[[Tensor], tuple[Tensor, Tensor]]


def feature_attention(
    q: Tensor, k: Tensor, v: Tensor, query_features: QueryFeatures, key_features: KeyFeatures, width: int, kernel: str
) -> Tensor:
    """D⁻¹·φ(Q)(ψ(K)ᵀ[V, 1]) streamed over row tiles: O((n + m)·width·dv) time, no n×m matrix.

    Args:
        q: ``(..., n, d)``; k: ``(..., m, d)``; v: ``(..., m, dv)`` (leading dims already broadcast).
        query_features: ``x (..., b, d) → φ(x) (..., b, width)``; any positive per-row factor is
            allowed (it cancels between numerator and normaliser).
        key_features: ``y (..., b, d) → (ψ (..., b, width), log_scale (..., 1, 1))`` meaning the true
            features are ψ·exp(log_scale). The key summary keeps a running maximum of log_scale
            (as in streaming softmax) so that large features never overflow; the common factor cancels.
        width: feature count (sets the tile height).

    Returns ``(..., n, dv)``. Raises :class:`NormaliserError` on a non-positive normaliser.
    """
    rows = rows_per_tile(width)
    m, dv = v.shape[-2], v.shape[-1]
    unit = value_scale(v, m)  # an exact power of two: the key summary sums m values
    v = v * unit if unit != 1.0 else v
    ones = torch.ones(*v.shape[:-1], 1, dtype=v.dtype, device=v.device)  # (..., m, 1)
    v1 = torch.cat([v, ones], dim=-1)  # (..., m, dv + 1)
    summary: Tensor | None = None  # (..., width, dv + 1), in units of exp(level)
    level: Tensor | None = None  # (..., 1, 1) running max of key log-scales
    for start in range(0, m, rows):
        psi, log_scale = key_features(k[..., start : start + rows, :])  # (..., b, width), (..., 1, 1)
        part = psi.transpose(-1, -2) @ v1[..., start : start + rows, :]  # (..., width, dv + 1)
        if summary is None or level is None:
            summary, level = part, log_scale
            continue
        new_level = torch.maximum(level, log_scale)
        summary = summary * torch.exp(level - new_level) + part * torch.exp(log_scale - new_level)
        level = new_level
    assert summary is not None
    out = []
    for start in range(0, q.shape[-2], rows):
        res = query_features(q[..., start : start + rows, :]) @ summary  # (..., b, dv + 1)
        out.append(divide_by_normaliser(res[..., :dv], res[..., dv:], kernel))  # (..., b, dv)
    result = torch.cat(out, dim=-2)  # (..., n, dv)
    return check_output(kernel, result / unit if unit != 1.0 else result, VALUE_HINT)
