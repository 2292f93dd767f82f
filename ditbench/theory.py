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

from .expapprox import MAX_DEGREE, minimal_approx, minimax_degree


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


def degree_for(radius: float, eps: float, max_degree: int = MAX_DEGREE, method: str = "minimax") -> int:
    """Minimal degree g of a polynomial P with relative error |P(x)e^{−x} − 1| ≤ eps on
    [−radius, radius].

    ``method="minimax"``: the true minimal degree (the relative-error minimax polynomial, Remez in
    high precision, certified bracket; :func:`ditbench.expapprox.minimax_degree`). The kernels
    build that P for a radius ≤ 0.55 % larger and round it to float64, which costs at most one more
    degree (:func:`ditbench.expapprox.minimal_approx`). ``method="chebyshev"``: the first
    construction's verified degree (Chebyshev interpolant, float64 monomials), for comparison.

    radius: logit radius R ≥ 0 (all |scale·⟨q, k⟩| ≤ R). eps in (0, 1).
    Raises ValueError naming radius, eps and max_degree when no degree up to the cap qualifies.
    """
    if method == "minimax":
        return minimax_degree(float(radius), float(eps), int(max_degree))
    return minimal_approx(float(radius), float(eps), int(max_degree), method).degree


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
    """Tight ‖T − Att‖_max ≤ 2ε/(1 + √(1 − ε²))·‖V‖_max (≈ ε·‖V‖) when P has relative error ≤ ε
    on every logit (derived in docs/polynomial.md: the largest total-variation distance between a
    distribution p and its reweighting p(1 + δ)/Σp(1 + δ), |δ| ≤ ε, is ε/(1 + √(1 − ε²)), reached
    with δ = ±ε on masses (√(1 − ε²) − 1 + ε)/(2ε) and the rest, and values ±‖V‖_max there)."""
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    return 2.0 * eps / (1.0 + math.sqrt(1.0 - eps * eps)) * float(v_max)


def loose_output_error_bound(eps: float, v_max: float) -> float:
    """The first, 2×-loose form 2ε/(1−ε)·‖V‖_max (kept to show the tightening)."""
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    return 2.0 * eps / (1.0 - eps) * float(v_max)


def worst_mass(eps: float) -> float:
    """The mass α* = (√(1 − ε²) − 1 + ε)/(2ε) (→ 1/2) that the tight bound's worst case puts on
    the keys with δ = +ε."""
    return (math.sqrt(1.0 - eps * eps) - 1.0 + eps) / (2.0 * eps)


def rounding_error_bound(unit_roundoff: float, m: int, d: int, degree: int, condition: float, v_max: float) -> float:
    """Worst-case extra ‖T − Att‖_max from floating-point rounding in the polynomial kernel.

    Every normaliser is a sum of N ≤ m + r + 2g + 4 rounded terms (r = C(g + d, d), g + 2
    rounded factors per term), each bounded by Σ|b_i| (monomials of the normalised inputs are
    ≤ 1), so its relative error is ≤ γ_N·κ with γ_N = N·u/(1 − N·u) and κ = Σ|b_i|/min P
    (:meth:`ditbench.expapprox.ExpApprox.condition`); numerators likewise carry ≤ γ_N·κ·‖V‖_max
    relative to the normaliser. Hence ≤ 2γ_Nκ/(1 − γ_Nκ)·‖V‖_max (inf when γ_Nκ ≥ 1).
    A worst case: random rounding is usually ~√N smaller.

    unit_roundoff: u of the dtype (torch.finfo(dtype).eps / 2). Vacuous in float32 for R ≳ 3
    (κ ≈ e^{2R} taken at the worst row of the worst input); the realistic term on given inputs
    is ditbench.attention.polybounds.rounding_bound.
    """
    terms = m + feature_rank(d, degree) + 2 * degree + 4
    gamma = terms * unit_roundoff / (1.0 - terms * unit_roundoff) if terms * unit_roundoff < 1 else math.inf
    rel = gamma * condition
    return math.inf if rel >= 1 else 2.0 * rel / (1.0 - rel) * float(v_max)


# λ of the probabilistic rounding model (Higham & Mary 2019, Thm 3.1): each term's bound holds
# with probability ≥ 1 − 2·exp(−λ²(1 − u)²/2) = 1 − 3e-11 at λ = 7.
ROUNDING_LAMBDA = 7.0


def polynomial_rounding_depth(m: int, d: int, degree: int, block: int) -> int:
    """Rounded operations along one term of the streamed polynomial kernel's sums
    (ditbench.attention.polynomial): the normalisation q/ρ (1) and monomial products (g − 1) on
    each side, ω and the high factor h ⊗ (v, 1) (3), the key contraction inside a tile (block)
    and across tiles (⌈m/block⌉), the weighted summary (1), the query contraction over the
    r' = C(g − 1 + d, d) low monomials and the d + 1 high factors, and the division (1)."""
    r_low = feature_rank(d, max(degree - 1, 0))
    tile = min(block, m)
    return 2 * max(degree, 1) + 4 + tile + math.ceil(m / tile) + r_low + d + 1 + 1


def rounding_term(unit_roundoff: float, depth: int, condition: float, v_max: float, *,
                  model: str = "storage", lam: float = ROUNDING_LAMBDA) -> float:
    """2ρ/(1 − ρ)·‖V‖_max with ρ = γ·κ: the rounding part of ‖T − Att‖_max when every normaliser
    and numerator is a sum of terms each carrying ≤ ``depth`` roundings, whose magnitudes add up to
    ``condition`` (κ) times the normaliser (ditbench.attention.polybounds). inf when ρ ≥ 1.

    model ``"storage"`` (the realistic default): γ = u, one rounding per stored term — every term
    of the sum exists once as a working-precision number (features, key summary), so the computed
    sum carries that error even when all accumulation is perfect; accumulation errors, largely
    independent, are not multiplied in (measured on adversarial rows, docs/polynomial.md: 90–320×
    below this estimate, which is therefore a practical upper estimate, not a theorem);
    ``"probabilistic"``: γ = exp(λ√N·u + N·u²/(1 − u)) − 1 (Higham & Mary 2019, each term's
    roundings independent); ``"worst"``: γ = N·u/(1 − N·u) (Higham 2002, Lemma 3.1), rigorous.
    """
    n, u = float(depth), float(unit_roundoff)
    if model == "storage":
        gamma = u
    elif model == "probabilistic":
        gamma = math.expm1(lam * math.sqrt(n) * u + n * u * u / (1 - u))
    elif model == "worst":
        gamma = n * u / (1 - n * u) if n * u < 1 else math.inf
    else:
        raise ValueError(f"model={model!r} must be 'storage', 'probabilistic' or 'worst'")
    rho = gamma * float(condition)
    return math.inf if rho >= 1 else 2.0 * rho / (1.0 - rho) * float(v_max)


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
