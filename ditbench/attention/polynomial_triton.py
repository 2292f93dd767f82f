"""``polynomial_triton``: the polynomial method as two fused Triton kernels (CUDA; DESIGN §3.1).

Same mathematics as :func:`ditbench.attention.polynomial_attention` with the unfactored layout of
the fused CPU kernel: inputs normalised by their max norms (q̂ = q/ρ_q, k̂ = k/ρ_k, so every
monomial is ≤ 1), the r = C(g + d, d) monomials M(x) of degree ≤ g, weights w_α = b_|α|·γ^|α|·mult(α)
folded once into the key summary, and

    key pass    Z = Σ_t M(k̂_t) ⊗ (v_t, 1)          (r, dv + 1)   grid: feature chunks × batch × splits
    weights     W = w ∘ Z                            (torch, r·(dv + 1))
    query pass  Y_t = M(q̂_t)ᵀ W,  T_t = Y_t[:dv] / Y_t[dv]         grid: query blocks × batch

Each program builds its (tokens × BLOCK_R) feature tile in registers — every monomial is the
product of ≤ g gathered coordinates (index table ``(r, g)``, padded with d, which loads as 1) —
and feeds it straight to ``tl.dot`` with float32 accumulation (``input_precision="ieee"``: no
TF32, so float32 rounding is what theory.rounding_error_bound assumes). No (tokens × r) matrix
is ever written; the key pass streams over key blocks, the query pass over feature chunks.
The key pass writes one (r, dv + 1) partial per split, summed by torch (deterministic; no atomics).

Support: CUDA float32, d ≤ 64, dv ≤ 64 (dv + 1 padded to ≤ 128 columns), degree ≤ MAX_DEGREE (the
product loop is unrolled), and per-program shared memory for the two ``tl.dot`` operands within
SHARED_MEMORY_BYTES; anything else is refused with a reason (:func:`unsupported_reasons`).
With ``TRITON_INTERPRET=1`` set before triton is imported, the launchers also run on CPU tensors
(Triton's interpreter): that is how CI checks correctness without a GPU.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import theory
from .._checks import EPS, Param, check_eps, check_qkv, resolve_scale
from ..errors import KernelRefusal, check_normalisers
from .features import monomial_table, monomial_weights
from .polynomial import CONSTRUCTION, RADIUS, choose_approx, polynomial_radius
from .registry import Kernel, Problem, register

MAX_D = 64
MAX_DV = 64
MAX_DEGREE = 12  # the monomial product loop is unrolled g times
BLOCK_T = 64  # tokens per program tile
BLOCK_R = 32  # features per chunk
# Shared memory one program may use for the tl.dot operands (H100/H200: 228 KiB per SM; keep
# well inside so two programs and the pipeline's stages fit).
SHARED_MEMORY_BYTES = 96 << 10
SPLITS = 64  # key-pass programs per (feature chunk, batch) along the keys


def _cols(dv: int) -> int:
    """dv + 1 padded to a power of two ≥ 16 (tl.dot's minimum)."""
    return max(16, 1 << math.ceil(math.log2(dv + 1)))


def shared_bytes(dv: int) -> int:
    """Bytes of the two tl.dot operands of one program: (BLOCK_T × BLOCK_R) features and
    (BLOCK_R or BLOCK_T) × columns, float32, double-buffered."""
    return 2 * 4 * (BLOCK_T * BLOCK_R + max(BLOCK_R, BLOCK_T) * _cols(dv))


def unsupported_reasons(d: int, dv: int, degree: int | None, dtype: torch.dtype) -> list[str]:
    """Why the Triton kernel cannot run this shape (empty when it can); the device is checked
    by the registry."""
    reasons = []
    if dtype != torch.float32:
        reasons.append(f"polynomial_triton accumulates float32 and supports float32 inputs only, not {dtype}")
    if d > MAX_D:
        reasons.append(f"polynomial_triton supports d ≤ {MAX_D}, not d={d}")
    if dv > MAX_DV:
        reasons.append(f"polynomial_triton supports dv ≤ {MAX_DV}, not dv={dv}")
    if degree is not None and degree > MAX_DEGREE:
        reasons.append(f"polynomial_triton unrolls the monomial products up to degree {MAX_DEGREE}; "
                       f"degree {degree} is refused (lower the radius or raise eps)")
    if shared_bytes(dv) > SHARED_MEMORY_BYTES:
        reasons.append(f"polynomial_triton tiles need {shared_bytes(dv)} B of shared memory > {SHARED_MEMORY_BYTES} B")
    return reasons


@lru_cache(maxsize=64)
def index_table(d: int, degree: int) -> np.ndarray:
    """(r, max(g, 1)) int32: the coordinates whose product is each monomial (in
    features.monomial_table's row order), padded with d (a coordinate that loads as 1)."""
    table = monomial_table(d, degree)
    rows: list[list[int]] = [[]] + ([[j] for j in range(d)] if degree >= 1 else [])
    rows += [[] for _ in range(table.rank - len(rows))]
    for steps in table.levels:
        for dst, src, count, coord in steps:
            for j in range(count):
                rows[dst + j] = rows[src + j] + [coord]
    width = max(degree, 1)
    return np.array([r + [d] * (width - len(r)) for r in rows], dtype=np.int32)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") == "1"


def _kernels() -> Any:
    """The Triton kernels (:mod:`._triton_kernels` imports triton, so only on first use)."""
    from . import _triton_kernels

    return _triton_kernels


def key_summary(x: Tensor, vals: Tensor, degree: int, splits: int = SPLITS) -> Tensor:
    """Σ_t M(x_t) ⊗ vals_t. x ``(B, m, d)`` (already normalised), vals ``(B, m, C)`` → ``(B, r, C)``."""
    key_pass = _kernels().key_pass
    batch, m, d = x.shape
    cols = vals.shape[-1]
    idx = torch.as_tensor(index_table(d, degree), device=x.device)  # (r, G)
    r, g = idx.shape
    splits = max(1, min(splits, -(-m // BLOCK_T)))
    part = x.new_zeros(splits, batch, r, cols)  # (S, B, r, C)
    grid = (-(-r // BLOCK_R), batch, splits)
    key_pass[grid](x.contiguous(), vals.contiguous(), idx, part, m, r, d, cols, batch, splits,
                   G=g, BT=BLOCK_T, BR=BLOCK_R, CP=_cols(cols - 1))
    return part.sum(dim=0)  # (B, r, C)


def query_apply(x: Tensor, w: Tensor, degree: int) -> Tensor:
    """M(x_t)ᵀ w. x ``(B, n, d)`` (already normalised), w ``(B, r, C)`` → ``(B, n, C)``."""
    query_pass = _kernels().query_pass
    batch, n, d = x.shape
    cols = w.shape[-1]
    idx = torch.as_tensor(index_table(d, degree), device=x.device)  # (r, G)
    r, g = idx.shape
    y = x.new_empty(batch, n, cols)  # (B, n, C)
    query_pass[(-(-n // BLOCK_T), batch)](x.contiguous(), w.contiguous(), idx, y, n, r, d, cols,
                                          G=g, BT=BLOCK_T, BR=BLOCK_R, CP=_cols(cols - 1))
    return y


def polynomial_triton_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, eps: float = 1e-3,
    degree: int | None = None, radius: float | None = None, construction: str = "minimax",
) -> Tensor:
    """softmax(scale·q kᵀ)·v by the polynomial method in two Triton kernels.

    Shapes, ``scale``, ``eps``, ``degree``, ``radius`` and ``construction`` as
    :func:`polynomial_attention` (``(..., n, d)``, ``(..., m, d)``, ``(..., m, dv)`` → ``(..., n, dv)``,
    float32, CUDA; CPU tensors only under ``TRITON_INTERPRET=1``); the same P (one degree
    selection, :func:`~ditbench.attention.polynomial.choose_approx`, at the same realised radius,
    :func:`~ditbench.attention.polynomial.polynomial_radius`). Same guarantee
    ‖T − Att‖_max ≤ 2ε/(1 + √(1 − ε²))·‖V‖_max in exact arithmetic; NormaliserError (never NaN)
    when a normaliser is not positive and finite, KernelRefusal for what it does not support (the
    reasons of :func:`unsupported_reasons`).
    """
    n, m, d, dv = check_qkv(q, k, v)
    if q.device.type != "cuda" and not _interpreting():
        raise KernelRefusal(f"polynomial_triton runs on CUDA tensors, not {q.device.type} "
                         f"(set TRITON_INTERPRET=1 before importing triton to run Triton's CPU interpreter)")
    s, eps = resolve_scale(scale, d), check_eps(eps)
    reasons = unsupported_reasons(d, dv, degree, q.dtype)
    if reasons:
        raise KernelRefusal("; ".join(reasons))
    batch_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    batch = math.prod(batch_shape)
    rho_q, rho_k, r_poly = polynomial_radius(q, k, s, radius)  # as polynomial_attention: a true upper bound
    approx = choose_approx(r_poly, eps, degree, construction)
    r_poly = approx.radius  # ≥ the bound (the minimal construction rounds the radius up)
    reasons = unsupported_reasons(d, dv, approx.degree, q.dtype)
    if reasons:
        raise KernelRefusal("; ".join(reasons))
    gamma = s * rho_q * rho_k / r_poly if r_poly > 0 else 0.0
    coeffs = torch.tensor([b * gamma**i for i, b in enumerate(approx.coefficients)], dtype=torch.float64,
                          device=q.device)  # (g + 1,)
    qn = (q.expand(*batch_shape, n, d).reshape(batch, n, d) / (rho_q or 1.0)).contiguous()  # (B, n, d)
    kn = (k.expand(*batch_shape, m, d).reshape(batch, m, d) / (rho_k or 1.0)).contiguous()  # (B, m, d)
    vb = v.expand(*batch_shape, m, dv).reshape(batch, m, dv)
    va = torch.cat([vb, vb.new_ones(batch, m, 1)], dim=-1)  # (B, m, dv + 1)
    z = key_summary(kn, va, approx.degree)  # (B, r, dv + 1)
    w = z * monomial_weights(d, coeffs).to(q.dtype)[:, None]  # (B, r, dv + 1)
    y = query_apply(qn, w, approx.degree)  # (B, n, dv + 1)
    check_normalisers(float(y[..., dv].amin()), kernel="polynomial_triton",
                      context=f"at degree {approx.degree}, radius {r_poly:g}",
                      hint="use a larger eps or a smaller radius")
    return (y[..., :dv] / y[..., dv:]).reshape(*batch_shape, n, dv)


##################################################################################
#                                Registration                                    #
##################################################################################

def _approx_degree(p: Problem, params: Mapping[str, Any]) -> int:
    radius = params["radius"] if params["radius"] is not None else p.radius_bound()
    if radius is None:
        raise KernelRefusal("polynomial_triton: the problem has no entry bound and no radius was given")
    return choose_approx(float(radius), float(params["eps"]), params["degree"], params["construction"]).degree


def _limits(p: Problem, params: Mapping[str, Any]) -> list[str]:
    try:
        degree = _approx_degree(p, params)
    except KernelRefusal as err:  # our own refusal: no degree reaches eps
        return [f"polynomial_triton: {err}"]
    return unsupported_reasons(p.d, p.dv, degree, p.dtype)


def _cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    return theory.polynomial_forward_cost(p.n, p.m, p.d, p.dv, _approx_degree(p, params), itemsize=4,
                                          block=BLOCK_T, fused=True)


def _describe(p: Problem, params: Mapping[str, Any], inputs: tuple[Tensor, ...] | None = None,
              rows: Tensor | None = None) -> dict[str, Any]:
    """As the torch kernel's hook (ditbench.attention.polynomial): the worst-case prediction
    without ``inputs``; with (q, k, v) the degree, rank and radius a call on them runs, and its
    guarantee (``err_bound``, float32 ``rounding_bound`` on query ``rows``)."""
    if inputs is None:
        g = _approx_degree(p, params)
        return {"degree": g, "rank": theory.feature_rank(p.d, g), "impl": "triton"}
    from .polybounds import guarantee

    q, k, v = inputs[:3]
    s = resolve_scale(p.scale, q.shape[-1])
    _, _, r_poly = polynomial_radius(q, k, s, params["radius"])
    approx = choose_approx(r_poly, float(params["eps"]), params["degree"], params["construction"])
    return {"degree": approx.degree, "rank": theory.feature_rank(p.d, approx.degree), "radius": approx.radius,
            "approx_error": approx.relative_error, "impl": "triton",
            **guarantee(q, k, v, s, approx, block=BLOCK_T, rows=rows)}


POLYNOMIAL_TRITON = register(Kernel(
    name="polynomial_triton", fn=polynomial_triton_attention, op="forward", exact=False,
    description="polynomial method as two fused Triton kernels (features built in registers, tl.dot, float32)",
    dtypes=frozenset({torch.float32}), devices=frozenset({"cuda"}),
    params={"eps": 1e-3, "degree": None, "radius": None, "construction": "minimax"},
    schema={"eps": EPS, "radius": RADIUS, "construction": CONSTRUCTION,
            "degree": Param("int", low=0, high=MAX_DEGREE, optional=True,
                            why="the Triton kernel unrolls the monomial products up to MAX_DEGREE")},
    cost=_cost, limits=_limits, describe=_describe,
))
