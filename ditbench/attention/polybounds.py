"""The polynomial kernel's guarantee on given inputs: the exact-arithmetic bound and a realistic
rounding term derived from the magnitudes the kernel actually sums (docs/polynomial.md, "Bounds").

Every normaliser the kernel forms is Σ_j P(x_ij) = Σ_j Σ_α ω_α q̂_i^α k̂_j^α (x_ij the logits,
q̂, k̂ the max-norm-normalised inputs, ω_α = b_|α|·γ^|α|·mult(α)). Rounding perturbs each term
by a relative amount θ, so the absolute error is ≤ |θ|_max·Σ_j Σ_α |ω_α q̂_i^α k̂_j^α|, and
Σ_α |ω_α||q̂^α||k̂^α| = Σ_i |b_i| γ^i ⟨|q̂|, |k̂|⟩^i =: P_abs(y_ij). Relative to the normaliser,

    κ_i = Σ_j P_abs(y_ij) / Σ_j P(x_ij)  ≤  Σ_j P_abs(y_ij) / ((1 − ε)·Σ_j e^{x_ij}),

the conditioning of row i *on these inputs*: ≈ 1 when the logits sit near 0 (random inputs),
≈ e^{2R} only when a row's logits all sit near −R with aligned magnitudes (adversarial rows). The
worst-case term (theory.rounding_error_bound) takes the worst row of the worst input, which makes
it vacuous at every R ≳ 3 in float32; this one is evaluated on the rows that were checked.

The numerator is the same sum with |v_j| ≤ ‖V‖_max, so T_i's error is ≲ 2ρ_i/(1 − ρ_i)·‖V‖_max
with ρ_i = γ·κ_i. γ (theory.rounding_term): ``"storage"`` (default) γ = u — every term exists
once as a working-precision number, so that much error is there even with perfect accumulation;
the realistic estimate, measured 90–320× above adversarial float32 errors (docs/polynomial.md);
``"probabilistic"`` the Higham–Mary model along the kernel's summation depth
(theory.polynomial_rounding_depth); ``"worst"`` the rigorous γ_N = N·u/(1 − N·u).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import theory
from ..expapprox import ExpApprox

# Logit-tile size (elements) for the float64 conditioning pass: 4 Mi float64 = 32 MiB per tile.
TILE_ELEMENTS = 1 << 22


def row_condition(q: Tensor, k: Tensor, scale: float, approx: ExpApprox, rows: Tensor | None = None) -> Tensor:
    """κ_i = Σ_j P_abs(y_ij) / ((1 − ε)·Σ_j e^{x_ij}) for the query ``rows`` (all when None), in float64.

    q: ``(n, d)``, k: ``(m, d)`` (the rounded inputs the kernel saw). approx: the P the kernel
    used (``.radius`` R, coefficients b_i in x/R). Returns ``(r,)`` float64, each ≥ 1 − ε.
    Cost O(r·m·(d + g)), streamed over key tiles of TILE_ELEMENTS logits.
    """
    q64 = (q if rows is None else q[rows.to(q.device)]).detach().to(device="cpu", dtype=torch.float64)  # (r, d)
    k64 = k.detach().to(device="cpu", dtype=torch.float64)  # (m, d)
    b_abs = torch.tensor(np.abs(np.asarray(approx.coefficients)), dtype=torch.float64)  # (g + 1,)
    radius = approx.radius if approx.radius > 0 else 1.0
    num = torch.zeros(q64.shape[0], dtype=torch.float64)
    den_log = torch.full((q64.shape[0],), -math.inf, dtype=torch.float64)
    step = max(1, TILE_ELEMENTS // max(1, q64.shape[0]))
    for start in range(0, k64.shape[0], step):
        kb = k64[start : start + step]  # (b, d)
        x = scale * q64 @ kb.T  # (r, b) logits
        y = scale * q64.abs() @ kb.abs().T / radius  # (r, b) in [0, 1] by Cauchy–Schwarz
        p_abs = torch.zeros_like(y)
        for c in reversed(b_abs.tolist()):  # Horner, all terms ≥ 0: no cancellation
            p_abs = p_abs * y + c
        num += p_abs.sum(dim=1)
        den_log = torch.logaddexp(den_log, torch.logsumexp(x, dim=1))
    return num / (1.0 - min(approx.relative_error, 0.5)) / torch.exp(den_log)  # (r,)


def rounding_bound(q: Tensor, k: Tensor, v: Tensor, scale: float, approx: ExpApprox, *, block: int,
                   rows: Tensor | None = None, model: str = "storage", lam: float = theory.ROUNDING_LAMBDA) -> float:
    """max over ``rows`` of 2ρ_i/(1 − ρ_i)·‖V‖_max (module docstring) for the inputs' dtype; inf
    when some ρ_i ≥ 1. q ``(n, d)``, k ``(m, d)``, v ``(m, dv)``; block: the kernel's tile rows."""
    n, d = q.shape[-2:]
    m = k.shape[-2]
    unit = torch.finfo(q.dtype).eps / 2
    depth = theory.polynomial_rounding_depth(m, d, approx.degree, block)
    kappa = float(row_condition(q, k, scale, approx, rows).max())
    return theory.rounding_term(unit, depth, kappa, float(v.abs().max()), model=model, lam=lam)


def guarantee(q: Tensor, k: Tensor, v: Tensor, scale: float, approx: ExpApprox, *, block: int,
              rows: Tensor | None = None) -> dict[str, Any]:
    """``err_bound`` (exact arithmetic, tight constant, realised ε) and ``rounding_bound`` (the
    inputs' dtype, storage model, on ``rows``) of the kernel's output on these inputs.
    Leading batch dims are folded (the worst batch entry counts)."""
    if q.ndim > 2 or k.ndim > 2 or v.ndim > 2:
        shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        qs, ks, vs = (x.expand(*shape, *x.shape[-2:]).reshape(-1, *x.shape[-2:]) for x in (q, k, v))
        parts = [guarantee(a, b_, c, scale, approx, block=block, rows=rows) for a, b_, c in zip(qs, ks, vs)]
        return {key: max(p[key] for p in parts) for key in parts[0]}
    v_max = float(v.detach().abs().max())
    err = theory.output_error_bound(approx.relative_error, v_max) if approx.relative_error < 1 else math.inf
    return {"err_bound": err, "rounding_bound": rounding_bound(q, k, v, scale, approx, block=block, rows=rows)}
