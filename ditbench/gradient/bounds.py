"""A-priori error bounds for the almost-linear gradients (derivation: docs/gradient.md).

Notation: f = softmax(S), S = s·A1XA2ᵀ; P ≈ exp with |P(x) − eˣ| ≤ ε·eˣ on [−R, R] ⊇ every S_ij;
h = A3Y; c = fh − E, C = max_i‖c_i‖₂ ≤ max_j‖h_j‖₂ + max_i‖E_i‖₂ (rows of f are convex weights).
H = max_j‖h_j − z‖₂ for any centre z (we take the mean row): only differences of rows of h and
Δf·h = Δf·(h − 1zᵀ) (rows of Δf sum to 0) enter below. p = ∂L/∂S = f∘(q − r1ᵀ), q = chᵀ,
r_i = c_i·(fh)_i.

1. f̃ = P(S)/rowsum: f̃_ij/f_ij ∈ [(1−ε)/(1+ε), (1+ε)/(1−ε)], so |f̃ − f| ≤ η·f entrywise,
   η = 2ε/(1−ε).
2. Δc_i = Σ_j Δf_ij h_j: ‖Δc_i‖₂ ≤ ηH.  Δq_ij = Δc_i·h_j.  Δr_i = Δc_i·(f̃h)_i + c_i·Δc_i.
3. p̃_ij − p_ij = Δf_ij(q̃_ij − r̃_i) + f_ij(Δq_ij − Δr_i), with
   |q̃_ij − r̃_i| = |c̃_i·(h_j − (f̃h)_i)| ≤ 2H(C + ηH) and |Δq_ij − Δr_i| = |Δc_i·(h_j − (f̃h)_i − c_i)|
   ≤ ηH(2H + C). Hence |p̃ − p| ≤ κ·f entrywise with κ = ηH·(3C + 2H(1 + η)).
4. Autograd through the polynomial forward computes p̂ = p̃∘ρ, ρ = P′(S)/P(S). With
   |P′ − eˣ| ≤ ε′eˣ, |ρ − 1| ≤ (ε + ε′)/(1 − ε), and |p̃| ≤ (1 + η)f·2H(C + ηH), so
   κ̂ = κ + (1 + η)·2H(C + ηH)·(ε + ε′)/(1 − ε).
5. dL/dX error = s·A1ᵀ(p̃ − p)A2: |entry (k, l)| ≤ s·Σ_i|A1_ik|·Σ_j κ f_ij|A2_jl|
   ≤ s·κ·‖A1‖₁·‖A2‖_max (‖A1‖₁ = max column abs-sum; rows of f sum to 1).
Everything holds in exact arithmetic; ε is the realised error of the P used, times GRID_SLACK
(the dense-grid sampling margin of ditbench.expapprox).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_eps
from ..expapprox import GRID_PER_DEGREE, GRID_SLACK, ExpApprox
from .problem import check_gradient_inputs


def probability_error(eps: float) -> float:
    """η = 2ε/(1−ε): |f̃ − f| ≤ η·f entrywise when P has relative error ε (step 1)."""
    eps = check_eps(eps)
    return 2.0 * eps / (1.0 - eps)


def derivative_relative_error(approx: ExpApprox) -> float:
    """Realised max |P′(x)/eˣ − 1| on [−R, R], sampled like ExpApprox.relative_error (a Chebyshev-
    spaced grid of 64 points per degree; multiply by GRID_SLACK for a sup bound)."""
    radius, b = approx.radius, np.asarray(approx.coefficients)  # P(x) = Σ b_i (x/R)^i
    count = max(1025, GRID_PER_DEGREE * (approx.degree + 1) + 1)
    x = radius * np.cos(np.pi * np.arange(count) / (count - 1))  # (count,)
    if radius == 0.0:
        return abs(float(b[1] if b.shape[0] > 1 else 0.0) - 1.0)  # P′(0) = b_1 (t = x)
    db = np.polynomial.polynomial.polyder(b) / radius  # dP/dx coefficients in t
    return float(np.max(np.abs(np.polynomial.polynomial.polyval(x / radius, db) * np.exp(-x) - 1.0)))


def logit_gradient_factor(eps: float, h_norm: float, c_norm: float, derivative_eps: float | None = None) -> float:
    """κ with |p̃ − p| ≤ κ·f entrywise (steps 1–4; p = ∂L/∂S, f = softmax(S)).

    eps: relative error of P ≈ exp on every logit, in (0, 1). h_norm: H = max_j‖h_j‖₂.
    c_norm: C ≥ max_i‖c_i‖₂ of the exact c = fh − E. derivative_eps: relative error ε′ of P′ ≈ exp
    for the autograd route (None: the low-rank chain, which never differentiates P).
    """
    eta = probability_error(eps)
    kappa = eta * h_norm * (3.0 * c_norm + 2.0 * h_norm * (1.0 + eta))
    if derivative_eps is None:
        return kappa
    rho = (eps + float(derivative_eps)) / (1.0 - eps)
    return kappa + (1.0 + eta) * 2.0 * h_norm * (c_norm + eta * h_norm) * rho


def gradient_error_bound(
    a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, *,
    scale: float | None = None, approx: ExpApprox, autograd: bool = False,
) -> float:
    """A-priori bound on max_kl |G̃_kl − (dL/dX)_kl| (step 5) for the P actually used.

    a1, a2, a3, e: ``(n, d)``; x, y: ``(d, d)``; scale: s (None → 1/√d). approx: the P of the
    routine (rebuild it with ``exp_approx(info.radius, info.degree)``). autograd: bound
    :func:`polynomial_autograd_gradient` (adds P′'s error) instead of :func:`lowrank_gradient`.
    Exact arithmetic; float32 rounding comes on top. Cost O(n·d²) (one A3Y product).
    """
    g = check_gradient_inputs(a1, a2, a3, x, y, e, scale)
    eps = approx.relative_error * GRID_SLACK
    if not eps < 1.0:
        raise ValueError(f"P's relative error {eps:.3g} ≥ 1: no bound (normalisers may vanish)")
    h = (a3.double() @ y.double())  # (n, d)
    h_norm = float(torch.linalg.vector_norm(h - h.mean(dim=0), dim=-1).max())  # H (centred)
    c_norm = float(torch.linalg.vector_norm(h, dim=-1).max() + torch.linalg.vector_norm(e.double(), dim=-1).max())
    d_eps = derivative_relative_error(approx) * GRID_SLACK if autograd else None
    kappa = logit_gradient_factor(max(eps, 1e-300), h_norm, c_norm, d_eps)  # eps = 0 (R = 0, P = exp) is exact
    a1_cols = float(a1.double().abs().sum(dim=0).max())  # ‖A1‖₁
    return g.scale * kappa * a1_cols * float(a2.double().abs().max())
