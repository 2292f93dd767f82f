"""Theory the kernels implement (DESIGN §3): logit radius, degree and rank of the polynomial
method, error bounds, the B = √(ln n) threshold, and the one cost model (FLOPs and bytes).

This is the lowest layer: it imports nothing from the rest of ditbench except the numpy-only
:mod:`ditbench.expapprox` (the verified exp approximation that fixes the degree).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .expapprox import MAX_DEGREE, minimal_approx


@dataclass(frozen=True)
class Cost:
    """Predicted work for one kernel call.

    flops: floating-point operations (a multiply-add counts 2; an exp counts 1).
    bytes: peak extra memory the call allocates beyond its inputs and output.
    """

    flops: float
    bytes: float


def logit_radius(q: Tensor, k: Tensor, scale: float | None = None) -> float:
    """Upper bound R on every |scale·⟨q_i, k_j⟩| by Cauchy–Schwarz: scale·max‖q_i‖₂·max‖k_j‖₂.

    q: ``(..., n, d)``, k: ``(..., m, d)``. ``scale=None`` means 1/√d.
    """
    d = q.shape[-1]
    s = 1.0 / math.sqrt(d) if scale is None else float(scale)
    qn = torch.linalg.vector_norm(q.double(), dim=-1).max()
    kn = torch.linalg.vector_norm(k.double(), dim=-1).max()
    return float(s * qn * kn)


def degree_for(radius: float, eps: float, max_degree: int = MAX_DEGREE) -> int:
    """Minimal degree g at which the kernels' construction (Chebyshev interpolant of exp on
    [−radius, radius], in monomials, float64) has relative error ≤ eps, verified on a dense grid.

    radius: logit radius R ≥ 0 (all |scale·⟨q, k⟩| ≤ R). eps in (0, 1).
    Raises ValueError naming radius, eps and max_degree when no degree up to the cap qualifies.
    """
    return minimal_approx(float(radius), float(eps), int(max_degree)).degree


def max_degree_within(
    n: int, m: int, d: int, dv: int, memory_budget: float, *, itemsize: int = 4, block: int = 1024,
    factored: bool = False, fused: bool = False,
) -> int:
    """Largest degree whose :func:`polynomial_forward_cost` memory (bytes) fits ``memory_budget``
    (−1 when not even degree 0 fits). The rank grows like g^d/d!, so a linear scan is short."""
    degree = -1
    while polynomial_forward_cost(
        n, m, d, dv, degree + 1, itemsize=itemsize, block=block, factored=factored, fused=fused
    ).bytes <= memory_budget:
        degree += 1
        if degree > 10_000:  # an absurd budget: every degree a float64 interpolant can verify fits
            break
    return degree


def feature_rank(d: int, degree: int) -> int:
    """Rank of the symmetric-monomial features: Σ_{i≤g} C(i+d−1, i) = C(g+d, d)."""
    return math.comb(degree + d, d)


def paper_rank_bound(d: int, degree: int) -> int:
    """Alman–Song's looser rank count C(2(g+d), 2g)."""
    return math.comb(2 * (degree + d), 2 * degree)


def entry_threshold(n: int) -> float:
    """The entry bound √(ln n) at which attention stops being almost-linear (under SETH)."""
    if n < 2:
        raise ValueError(f"n={n} must be ≥ 2 for the threshold √(ln n) to be positive")
    return math.sqrt(math.log(n))


def output_error_bound(eps: float, v_max: float) -> float:
    """‖T − Att‖_max ≤ 2ε/(1−ε)·‖V‖_max when P has relative error ≤ ε on every logit."""
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    return 2.0 * eps / (1.0 - eps) * float(v_max)


def rounding_error_bound(unit_roundoff: float, m: int, d: int, degree: int, condition: float, v_max: float) -> float:
    """Worst-case extra ‖T − Att‖_max from floating-point rounding in the polynomial kernel.

    Every normaliser is a sum of N ≤ m + r + 2g + 4 rounded terms (r = C(g + d, d), g + 2
    rounded factors per term), each bounded by Σ|b_i| (monomials of the normalised inputs are
    ≤ 1), so its relative error is ≤ γ_N·κ with γ_N = N·u/(1 − N·u) and κ = Σ|b_i|/min P
    (:meth:`ditbench.expapprox.ExpApprox.condition`); numerators likewise carry ≤ γ_N·κ·‖V‖_max
    relative to the normaliser. Hence ≤ 2γ_Nκ/(1 − γ_Nκ)·‖V‖_max (inf when γ_Nκ ≥ 1).
    A worst case: random rounding is usually ~√N smaller.

    unit_roundoff: u of the dtype (torch.finfo(dtype).eps / 2).
    """
    terms = m + feature_rank(d, degree) + 2 * degree + 4
    gamma = terms * unit_roundoff / (1.0 - terms * unit_roundoff) if terms * unit_roundoff < 1 else math.inf
    rel = gamma * condition
    return math.inf if rel >= 1 else 2.0 * rel / (1.0 - rel) * float(v_max)


def exact_forward_cost(n: int, m: int, d: int, dv: int, *, itemsize: int = 4, block: int | None = None) -> Cost:
    """Exact attention: 2·n·m·(d + dv) for the two products plus n·m exponentials.

    Memory: one (block, m) logit tile plus its exponentials (the whole n×m when block is None).
    """
    rows = n if block is None else min(block, n)
    return Cost(flops=2.0 * n * m * (d + dv) + n * m, bytes=2.0 * rows * m * itemsize)


def polynomial_forward_cost(
    n: int, m: int, d: int, dv: int, degree: int, *, itemsize: int = 4, block: int = 1024, factored: bool = False,
    fused: bool = False,
) -> Cost:
    """Polynomial method: 2·(n + m)·r·(dv + 1) for the two products plus (n + m)·r to build features.

    Memory: the (r, dv + 1) key summary plus one (block, r) feature tile per side.

    ``fused=True`` is the fused CPU kernel (ditbench.attention.fused): the same FLOPs — every
    token's r monomials cost r − 1 − d multiplies plus d input scalings (≈ r), and the two
    products are exactly Ψ(K)ᵀ[V, 1] and Φ(Q)·W, 2·(m + n)·r·(dv + 1), which FlopCounterMode
    counts on their torch equivalent (tested) — and memory 2·r·(dv + 1) (summary and weighted
    summary) plus the (n, dv + 1) query result plus one (block, r + dv + 1 + d) tile per side.

    ``factored=True`` counts the streamed kernel's layout instead (ditbench.attention.polynomial):
    only the r' = C(g − 1 + d, d) monomials of degree < g are built and the top degree rides on
    the high factor (1, x) of width d + 1, so the products are (r' × w) with w = (d + 1)(dv + 1):
    2·(n + m)·r'·w for the products plus (n + m)·(r' + 2w) for features, the key-side outer
    products and the query-side weighted sum; memory 2·r'·w (summary and weighted summary)
    plus one (block, r' + w) tile per side.
    """
    if factored and fused:
        raise ValueError("factored and fused are two different layouts; pass at most one")
    if fused:
        r = feature_rank(d, degree)
        flops = 2.0 * (n + m) * r * (dv + 1) + (n + m) * r
        mem = (2 * r * (dv + 1) + n * (dv + 1) + 2 * min(block, max(n, m)) * (r + dv + 1 + d)) * itemsize
        return Cost(flops=flops, bytes=float(mem))
    if not factored:
        r = feature_rank(d, degree)
        flops = 2.0 * (n + m) * r * (dv + 1) + (n + m) * r
        mem = (r * (dv + 1) + 2 * min(block, max(n, m)) * r) * itemsize
        return Cost(flops=flops, bytes=float(mem))
    r_low = feature_rank(d, max(degree - 1, 0))
    width = (d + 1 if degree >= 1 else 1) * (dv + 1)
    flops = 2.0 * (n + m) * r_low * width + (n + m) * (r_low + 2 * width)
    mem = (2 * r_low * width + 2 * min(block, max(n, m)) * (r_low + width)) * itemsize
    return Cost(flops=flops, bytes=float(mem))


##################################################################################
#                 Gradient cost model (DESIGN §3.2, ditbench.gradient)           #
##################################################################################

def gradient_ranks(d: int, degree: int) -> tuple[int, int, int]:
    """Ranks of the chained low-rank gradient: k1 = C(g + d, d) (f ≈ U1V1ᵀ), k2 = k1 + d
    (q ≈ U2V2ᵀ), k3 = k1·k2 (p1 ≈ U3V3ᵀ, never materialised)."""
    k1 = feature_rank(d, degree)
    return k1, k1 + d, k1 * (k1 + d)


def exact_gradient_cost(n: int, d: int, *, itemsize: int = 4, block: int | None = None) -> Cost:
    """Closed-form dL/dX streamed over row blocks (ditbench.gradient.exact_gradient).

    Pass 1 (f·h): logits 2n²d, n² exps, f·h 2n²d. Pass 2: logits 2n²d, n² exps, q = c·hᵀ 2n²d,
    p = f∘(q − r) 2n², p·A2 2n²d. Total 10n²d + 4n² (+ O(nd²) for A1X, h and A1ᵀ(pA2)).
    Memory: three (block, n) tiles (logits/f, q, p) plus five (n, d) intermediates.
    """
    rows = n if block is None else min(block, n)
    flops = 10.0 * n * n * d + 4.0 * n * n + 8.0 * n * d * d
    return Cost(flops=flops, bytes=float((3 * rows * n + 5 * n * d) * itemsize))


def lowrank_gradient_cost(
    n: int, d: int, degree: int, *, itemsize: int = 4, block: int = 1024, direct: bool = False
) -> Cost:
    """The chained low-rank gradient (ditbench.gradient.lowrank_gradient), ranks from
    :func:`gradient_ranks`; ``direct=True`` counts its ``q_factor="direct"`` variant (k2 = d).

    The p1 term s·A1ᵀ(U1⊘U2)(V1⊘V2)ᵀA2 is contracted as G_U = Σ_i U1[i] ⊗ U2[i] ⊗ A1[i] and
    G_V = Σ_j V1[j] ⊗ V2[j] ⊗ A2[j] (each (k1, k2, d), 2n·k1·k2·d flops as one matmul per block),
    then G_Uᵀ G_V (2k1·k2·d²). Plus features 2n·k1, five (n × k1 × d) products 10n·k1·d, r̃ 2n·k1·k2.
    Memory: per block (block, k2·d) Kronecker tiles and (block, k1) features, two (k1, k2·d)
    accumulators and (n, d) intermediates (h, c̃).
    """
    k1, k2, _ = gradient_ranks(d, degree)
    if direct:
        k2 = d
    rows = min(block, n)
    flops = 4.0 * n * k1 * k2 * d + 10.0 * n * k1 * d + 2.0 * n * k1 * k2 + 2.0 * n * k1 + 2.0 * k1 * k2 * d * d
    mem = rows * (2 * k2 * d + 2 * k1 + k2) + 2 * k1 * k2 * d + k1 * k2 + 4 * n * d
    return Cost(flops=flops, bytes=float(mem * itemsize))


def polynomial_autograd_gradient_cost(n: int, d: int, degree: int, *, itemsize: int = 4, block: int = 1024) -> Cost:
    """Autograd through the streamed polynomial forward (ditbench.gradient.polynomial_autograd_gradient).

    Time: the factored forward (:func:`polynomial_forward_cost`, n = m, dv = d) and a backward of
    about twice its FLOPs. Memory: autograd keeps every block's features for the backward, so
    about three (n, r' + (d + 1)²) tensors (monomials, high-factor products and their outputs)
    — O(n·r), not O(block·r).
    """
    fwd = polynomial_forward_cost(n, n, d, d, degree, itemsize=itemsize, block=block, factored=True)
    r_low = feature_rank(d, max(degree - 1, 0))
    width = (d + 1) * (d + 1)
    return Cost(flops=3.0 * fwd.flops, bytes=fwd.bytes + 3.0 * 2 * n * (r_low + width) * itemsize)
