"""Exact attention: a streamed reference, torch SDPA (the strongest exact baseline), and the
trivial O(n) "uniform" answer that every error figure is compared against (DESIGN §2)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import (
    BLOCK_SIZE, check_logit_range, check_output, check_positive_int, check_qkv, resolve_scale, value_scale,
)
from .. import theory
from ..errors import KernelRefusal
from .registry import Kernel, Problem, register

# Elements of one (block, m) logit tile: 2^18 floats = 1 MiB in float32, small enough to stay
# cache-resident (measured here: 2^18 runs n = 16384 about 25% faster than 2^22) and large enough
# that per-tile overhead is amortised.
_TILE_ELEMENTS = 1 << 18


def _default_block(m: int) -> int:
    return max(1, min(4096, _TILE_ELEMENTS // max(m, 1)))


def exact_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, block_size: int | None = None
) -> Tensor:
    """softmax(scale·q kᵀ) v, streamed over query blocks so memory stays O(block·m).

    Args:
        q: ``(..., n, d)`` queries. k: ``(..., m, d)`` keys. v: ``(..., m, dv)`` values.
            Leading dims broadcast like torch.
        scale: logit scale; ``None`` means 1/√d.
        block_size: query rows per tile; ``None`` picks one so a tile holds about 2^18 logits.

    Returns:
        ``(..., n, dv)``. Stable for any finite logits (the row maximum is subtracted before exp);
        values near the dtype's largest number are rescaled by an exact power of two. ValueError
        when the logits themselves would overflow the dtype (never a NaN output).
    """
    n, m, d, dv = check_qkv(q, k, v)
    s = resolve_scale(scale, d)
    check_logit_range(q, k, s)
    unit = value_scale(v, m)  # a power of two: w @ v sums m values
    v = v * unit if unit != 1.0 else v
    block = _default_block(m) if block_size is None else check_positive_int("block_size", block_size)
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q = q.expand(*batch, n, d)  # (..., n, d)
    k = k.expand(*batch, m, d)  # (..., m, d)
    v = v.expand(*batch, m, dv)  # (..., m, dv)
    kt = k.transpose(-1, -2)  # (..., d, m)
    out = []
    for start in range(0, n, block):
        logits = (q[..., start : start + block, :] @ kt) * s  # (..., b, m)
        logits = logits - logits.amax(dim=-1, keepdim=True)  # row max 0: exp never overflows
        w = torch.exp(logits)  # (..., b, m)
        out.append((w @ v) / w.sum(dim=-1, keepdim=True))  # (..., b, dv)
    result = torch.cat(out, dim=-2)  # (..., n, dv)
    return check_output("exact", result / unit if unit != 1.0 else result)


def sdpa_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    """torch's ``scaled_dot_product_attention`` on 4-D inputs (so the CPU flash kernel runs).

    Shapes as :func:`exact_attention`; leading dims are broadcast and folded into (1, H, ·, ·).
    """
    n, m, d, dv = check_qkv(q, k, v)
    s = resolve_scale(scale, d)
    check_logit_range(q, k, s)
    unit = value_scale(v, m)
    v = v * unit if unit != 1.0 else v
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q4 = q.expand(*batch, n, d).reshape(1, -1, n, d)  # (1, H, n, d)
    k4 = k.expand(*batch, m, d).reshape(1, -1, m, d)  # (1, H, m, d)
    v4 = v.expand(*batch, m, dv).reshape(1, -1, m, dv)  # (1, H, m, dv)
    out = F.scaled_dot_product_attention(q4, k4, v4, scale=s)  # (1, H, n, dv)
    out = out.reshape(*batch, n, dv)
    return check_output("sdpa", out / unit if unit != 1.0 else out)


def sdpa_flash_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    """As :func:`sdpa_attention` with torch's flash backend forced (CUDA, float16/bfloat16: the
    exact baseline on GPU). Raises :class:`KernelRefusal`, before calling torch, where the flash
    kernel cannot run the inputs (not CUDA, not float16/bfloat16, d ≠ dv or d > 256)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    d, dv = q.shape[-1], v.shape[-1]
    if q.device.type != "cuda" or q.dtype not in (torch.float16, torch.bfloat16) or d != dv or d > 256:
        raise KernelRefusal(f"sdpa_flash runs torch's flash kernel only on CUDA float16/bfloat16 with d = dv ≤ 256, "
                            f"not device={q.device.type}, dtype={q.dtype}, d={d}, dv={dv}")
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        return sdpa_attention(q, k, v, scale=scale)


def uniform_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    """Every output row is the mean of v: the O(n) answer of attention with all logits equal.

    Shapes as :func:`exact_attention`. ``scale`` is accepted for a uniform interface and unused.
    """
    n, m, d, dv = check_qkv(q, k, v)
    resolve_scale(scale, d)
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    unit = value_scale(v, m)  # the mean sums m values
    mean = (v * unit).mean(dim=-2, keepdim=True) / unit if unit != 1.0 else v.mean(dim=-2, keepdim=True)  # (..., 1, dv)
    return check_output("uniform", mean).expand(*batch, n, dv)  # (..., n, dv)


def _exact_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    return theory.exact_forward_cost(p.n, p.m, p.d, p.dv, itemsize=p.dtype.itemsize, block=_default_block(p.m))


def _sdpa_limits(p: Problem, params: Mapping[str, Any]) -> list[str]:
    return [] if p.dtype != torch.float64 or p.device != "cuda" else ["SDPA has no float64 flash kernel on CUDA"]


EXACT = register(Kernel(
    name="exact", fn=exact_attention, op="forward", exact=True,
    description="streamed softmax attention (reference; O(n·m·d) time, O(block·m) memory)",
    params={"block_size": None}, schema={"block_size": BLOCK_SIZE}, cost=_exact_cost,
))
SDPA = register(Kernel(
    name="sdpa", fn=sdpa_attention, op="forward", exact=True,
    description="torch scaled_dot_product_attention, 4-D (flash kernel on CPU)",
    cost=lambda p, params: theory.exact_forward_cost(p.n, p.m, p.d, p.dv, itemsize=p.dtype.itemsize, block=256),
    limits=_sdpa_limits,
))
SDPA_FLASH = register(Kernel(
    name="sdpa_flash", fn=sdpa_flash_attention, op="forward", exact=True,
    description="torch SDPA with the flash backend forced (CUDA, fp16/bf16: the exact GPU baseline)",
    dtypes=frozenset({torch.float16, torch.bfloat16}), devices=frozenset({"cuda"}),
    cost=lambda p, params: theory.exact_forward_cost(p.n, p.m, p.d, p.dv, itemsize=p.dtype.itemsize, block=128),
    limits=lambda p, params: [] if p.d <= 256 and p.dv == p.d else
    [f"sdpa_flash needs d = dv ≤ 256 (flash kernels), not d={p.d}, dv={p.dv}"],
))
UNIFORM = register(Kernel(
    name="uniform", fn=uniform_attention, op="forward", exact=False,
    description="every row = mean of V (the trivial O(n) baseline every error is compared against)",
    cost=lambda p, params: theory.uniform_cost(p.n, p.m, p.dv, itemsize=p.dtype.itemsize),
))
