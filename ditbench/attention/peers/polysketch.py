"""Degree-4 polynomial attention, exact and sketched (Kacham, Mirrokni, Zhong 2023, "PolySketchFormer").

Target (``poly4_exact``): with q̂, k̂ the normalised rows (below),

    Att_p = D⁻¹·(Q̂K̂ᵀ)^{∘4}·V,   D = diag((Q̂K̂ᵀ)^{∘4}·1),

a *different* attention from softmax: PolySketch should be scored against this target first and
against softmax second. The polynomial is homogeneous, so the logit ``scale`` cancels exactly in D⁻¹
(it is validated and otherwise unused).

Normalisation: the paper normalises queries and keys before the polynomial (so that ⟨q̂, k̂⟩^p
interpolates between uniform and argmax attention). Implemented here: unit ℓ₂ rows, so every
⟨q̂, k̂⟩ lies in [−1, 1] and the sketch's additive guarantee ε·‖q̂‖⁴‖k̂‖⁴ = ε is absolute.

Sketch (``polysketch``, the paper's PolySketchWithNegativity for p = 2 then self-tensoring): with
G₁, G₂ ∈ R^{d×r} independent standard Gaussian,

    φ(x) = (xG₁ ∘ xG₂)/√r ∈ R^r,        E⟨φ(q), φ(k)⟩ = ⟨q, k⟩²  (unbiased degree-2 sketch),
    Φ(x) = φ(x) ⊗ φ(x) ∈ R^{r²},        ⟨Φ(q), Φ(k)⟩ = ⟨φ(q), φ(k)⟩² ≥ 0 ≈ ⟨q, k⟩⁴,

so every approximate weight is non-negative (normalisers cannot change sign); the degree-4
estimate is biased upward by Var⟨φ(q), φ(k)⟩ = O(1/r), its error is O(1/√r), and it converges to
the exact degree-4 weights as r grows. The reference code's "+1" in the normaliser (a training
stabiliser) is not added: it would change the target.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ... import theory
from ..._checks import SEED, Param, check_allocation, check_output, value_scale
from ..registry import Kernel, Problem, register
from ._common import (
    VALUE_HINT, cpu_generator, divide_by_normaliser, feature_attention, gaussian, int_reasons, prepare, raise_if,
    rows_per_tile,
)

def unit_rows(x: Tensor, name: str) -> Tensor:
    """``x (..., n, d)`` with every row scaled to unit ℓ₂ norm; a zero row raises ValueError."""
    norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)  # (..., n, 1)
    zero = norms == 0
    if bool(zero.any()):
        raise ValueError(
            f"{name} has {int(zero.sum())} all-zero row(s); polynomial attention normalises rows to unit norm"
        )
    return x / norms


def degree2_sketch(x: Tensor, g1: Tensor, g2: Tensor) -> Tensor:
    """φ(x) = (xG₁ ∘ xG₂)/√r: ``x (..., n, d)``, ``g1, g2 (..., d, r)`` → ``(..., n, r)``.

    Unbiased degree-2 sketch: E⟨φ(x), φ(y)⟩ = ⟨x, y⟩² over Gaussian G₁, G₂.
    """
    return (x @ g1) * (x @ g2) / math.sqrt(g1.shape[-1])  # (..., n, r)


def self_tensor(phi: Tensor) -> Tensor:
    """Row-wise φ ⊗ φ: ``(..., n, r)`` → ``(..., n, r²)``, so that ⟨φ(x)⊗φ(x), φ(y)⊗φ(y)⟩ = ⟨φ(x), φ(y)⟩²."""
    return (phi[..., :, None] * phi[..., None, :]).flatten(-2)  # (..., n, r²)


def sketch_matrices(d: int, sketch_size: int, seed: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """G₁, G₂ ``(d, r)`` standard Gaussian, drawn on the CPU in float64 then cast to ``like``."""
    gen = cpu_generator(seed)
    return gaussian((d, sketch_size), gen, like), gaussian((d, sketch_size), gen, like)


def poly4_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    """Exact degree-4 polynomial attention D⁻¹(Q̂K̂ᵀ)^{∘4}V, streamed over query tiles (O(tile·m) memory).

    q: ``(..., n, d)``; k: ``(..., m, d)``; v: ``(..., m, dv)``; rows of q, k normalised to unit ℓ₂.
    ``scale`` cancels (homogeneous kernel). Returns ``(..., n, dv)``; raises NormaliserError when a
    query is orthogonal to every key (all its weights are 0).
    """
    q, k, v, _ = prepare(q, k, v, scale)
    qh, kt = unit_rows(q, "q"), unit_rows(k, "k").transpose(-1, -2)  # (..., n, d), (..., d, m)
    rows, out = rows_per_tile(k.shape[-2]), []
    unit = value_scale(v, k.shape[-2])  # an exact power of two: w @ v sums m values
    v = v * unit if unit != 1.0 else v
    for start in range(0, q.shape[-2], rows):
        # ⟨q̂, k̂⟩⁴ by two in-place squarings (pow was the most expensive op in the tile).
        w = (qh[..., start : start + rows, :] @ kt).square_().square_()  # (..., b, m)
        out.append(divide_by_normaliser(w @ v, w.sum(dim=-1, keepdim=True), "poly4_exact"))  # (..., b, dv)
    result = torch.cat(out, dim=-2)  # (..., n, dv)
    return check_output("poly4_exact", result / unit if unit != 1.0 else result, VALUE_HINT)


def _reasons(sketch_size: object, seed: object) -> list[str]:
    return int_reasons("sketch_size", sketch_size, 1) + int_reasons("seed", seed, 0)


def polysketch_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, sketch_size: int = 32, seed: int = 0
) -> Tensor:
    """PolySketch approximation of :func:`poly4_attention` with an r-dimensional degree-2 sketch.

    Args:
        q: ``(..., n, d)``; k: ``(..., m, d)``; v: ``(..., m, dv)``; leading dims broadcast.
        scale: validated; cancels (homogeneous kernel).
        sketch_size: r; the features Φ have r² entries per token.
        seed: seeds G₁, G₂ (drawn on the CPU in float64).

    Returns ``(..., n, dv)``; raises NormaliserError if a normaliser is exactly 0.
    """
    q, k, v, _ = prepare(q, k, v, scale)
    raise_if(_reasons(sketch_size, seed))
    width = sketch_size**2  # Φ has r² features: the key summary is (r², dv + 1), each tile ≥ one (r²,) row
    check_allocation(f"polysketch sketch_size={sketch_size} (r² = {width:,} features)",
                     float((width * (v.shape[-1] + 3) + 2 * q.shape[-1] * sketch_size) * q.element_size()),
                     q.device.type)
    g1, g2 = sketch_matrices(q.shape[-1], sketch_size, seed, q)  # (d, r) each
    qh, kh = unit_rows(q, "q"), unit_rows(k, "k")
    zero = torch.zeros((), dtype=q.dtype, device=q.device)

    def features(x: Tensor) -> Tensor:
        return self_tensor(degree2_sketch(x, g1, g2))  # (..., b, r²)

    def key_features(y: Tensor) -> tuple[Tensor, Tensor]:
        return features(y), zero.expand(*y.shape[:-2], 1, 1)  # unit rows: no overflow to guard

    return feature_attention(qh, kh, v, features, key_features, sketch_size**2, "polysketch")


def _poly4_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    return theory.poly4_exact_cost(p.n, p.m, p.d, p.dv, itemsize=p.dtype.itemsize, rows=rows_per_tile(p.m))


def _polysketch_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    r = params["sketch_size"]
    return theory.polysketch_cost(p.n, p.m, p.d, p.dv, r, itemsize=p.dtype.itemsize, tile=rows_per_tile(r * r))


POLY4_EXACT = register(Kernel(
    name="poly4_exact", fn=poly4_attention, exact=False,
    description=(
        "exact degree-4 polynomial attention D⁻¹(Q̂K̂ᵀ)^∘4 V, unit-norm rows (PolySketch's target, not softmax)"
    ),
    cost=_poly4_cost,
))
POLYSKETCH = register(Kernel(
    name="polysketch", fn=polysketch_attention, exact=False,
    description="PolySketch: self-tensored degree-2 Gaussian sketch of size r; approximates poly4_exact (not softmax)",
    params={"sketch_size": 32, "seed": 0}, schema={"sketch_size": Param("int", low=1), "seed": SEED},
    cost=_polysketch_cost, target="poly4_exact",
    limits=lambda p, params: _reasons(params["sketch_size"], params["seed"]),
    describe=lambda p, params, inputs=None, rows=None: {"rank": params["sketch_size"] ** 2},  # what ran: r² features
))
