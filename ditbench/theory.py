"""Theory the kernels implement (DESIGN §3): logit radius, degree and rank of the polynomial
method, error bounds, the B = √(ln n) threshold, and the one cost model (FLOPs and bytes).

This is the lowest layer: it imports nothing from the rest of ditbench except the numpy-only
:mod:`ditbench.expapprox` (the verified exp approximation that fixes the degree).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._checks import check_eps, check_finite, check_number, check_positive_int
from .expapprox import MAX_DEGREE, check_method, minimal_approx, minimax_degree


# Largest degree and dimension the rank formulas accept: far beyond any kernel (degrees stop at
# expapprox.MAX_DEGREE), and small enough that the exact binomial stays a fast computation.
MAX_RANK_DEGREE = 10_000
MAX_RANK_DIM = 10**9
_RANK_WHY = "C(g + d, d) is computed exactly; larger arguments would take minutes"


def _finite_cost(fn: Callable[..., Cost]) -> Callable[..., Cost]:
    """A cost model whose FLOPs or bytes overflow float (absurd sizes) raises ValueError saying so,
    instead of returning inf or an OverflowError."""
    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Cost:
        try:
            cost = fn(*args, **kwargs)
        except OverflowError:
            cost = Cost(flops=math.inf, bytes=math.inf)
        if not (math.isfinite(cost.flops) and math.isfinite(cost.bytes)):
            raise ValueError(f"{fn.__name__}{args!r}: the predicted cost overflows float64; the sizes are absurd")
        return cost

    return checked


@dataclass(frozen=True)
class Cost:
    """Predicted work for one kernel call.

    flops: floating-point operations (a multiply-add counts 2; an exp counts 1).
    bytes: peak extra memory the call allocates beyond its inputs and output.
    rate: which calibrated rate turns ``flops`` into seconds (ditbench.measure.budget.Rates):
        "exact" — the exact kernel's, exp-bound and so conservative for every kernel — or
        "fused" — the fused CPU polynomial kernel's own (it runs no exp: at the exact rate its
        prediction was ~26× too slow and the budget skipped sizes that take well under a second).
    """

    flops: float
    bytes: float
    rate: str = "exact"


def logit_radius(q: Tensor, k: Tensor, scale: float | None = None) -> float:
    """Upper bound R on every |scale·⟨q_i, k_j⟩| by Cauchy–Schwarz: scale·max‖q_i‖₂·max‖k_j‖₂.

    q: ``(..., n, d)``, k: ``(..., m, d)``; ``scale=None`` means 1/√d. The norms accumulate in
    float64 (no float64 copy of the inputs; :func:`norm_maxima`). The one radius implementation:
    the gradient routines, measure and the DiT criteria call it; the polynomial kernel uses
    :func:`norm_maxima` in its inputs' dtype, since it also normalises by those norms.
    """
    for name, x in (("q", q), ("k", k)):
        if not isinstance(x, Tensor) or x.ndim < 1 or x.numel() == 0:
            raise ValueError(f"{name} must be a non-empty tensor (..., tokens, d), got {getattr(x, 'shape', x)!r}")
        check_finite(name, x)
    d = q.shape[-1]
    if k.shape[-1] != d:
        raise ValueError(f"q and k must share the feature dim d: q has d={d}, k has d={k.shape[-1]}")
    s = 1.0 / math.sqrt(d) if scale is None else check_number("scale", scale, low=0, open_low=True)
    rho_q, rho_k = norm_maxima(q, k)
    radius = s * rho_q * rho_k
    if not math.isfinite(radius):
        raise ValueError(f"the logit radius overflows float64 (max‖q‖ = {rho_q:.3g}, max‖k‖ = {rho_k:.3g})")
    return radius


def norm_maxima(q: Tensor, k: Tensor, dtype: torch.dtype | None = torch.float64) -> tuple[float, float]:
    """(max_i ‖q_i‖₂, max_j ‖k_j‖₂) of ``q (..., n, d)`` and ``k (..., m, d)``, accumulated in
    ``dtype`` (None: the inputs' own), in one host sync: the factors of :func:`logit_radius`."""
    norms = torch.stack([torch.linalg.vector_norm(q, dim=-1, dtype=dtype).amax(),
                         torch.linalg.vector_norm(k, dim=-1, dtype=dtype).amax()])  # (2,)
    rho_q, rho_k = norms.tolist()
    return float(rho_q), float(rho_k)


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
    radius = check_number("radius", radius, low=0)
    max_degree = check_positive_int("max_degree", max_degree, minimum=0, maximum=MAX_DEGREE,
                                    why="the verified range of the float64 exp approximation")
    eps = check_eps(eps)
    if check_method(method) == "minimax":
        return minimax_degree(radius, eps, max_degree)
    return minimal_approx(radius, eps, max_degree, method).degree


def max_degree_within(
    n: int, m: int, d: int, dv: int, memory_budget: float, *, itemsize: int = 4, block: int = 1024,
    factored: bool = False, fused: bool = False, virtual_top: bool = False,
) -> int:
    """Largest degree whose :func:`polynomial_forward_cost` memory (bytes) fits ``memory_budget``
    (−1 when not even degree 0 fits). The rank grows like g^d/d!, so a linear scan is short."""
    check_number("memory_budget", memory_budget, low=0)
    degree = -1
    while polynomial_forward_cost(
        n, m, d, dv, degree + 1, itemsize=itemsize, block=block, factored=factored, fused=fused,
        virtual_top=virtual_top,
    ).bytes <= memory_budget:
        degree += 1
        if degree > MAX_DEGREE:  # an absurd budget: every degree the verified exp approximation reaches fits
            break
    return degree


def feature_rank(d: int, degree: int) -> int:
    """Rank of the symmetric-monomial features: Σ_{i≤g} C(i+d−1, i) = C(g+d, d)."""
    degree = check_positive_int("degree", degree, minimum=0, maximum=MAX_RANK_DEGREE, why=_RANK_WHY)
    d = check_positive_int("d", d, maximum=MAX_RANK_DIM, why=_RANK_WHY)
    return math.comb(degree + d, d)


def paper_rank_bound(d: int, degree: int) -> int:
    """Alman–Song's looser rank count C(2(g+d), 2g)."""
    degree = check_positive_int("degree", degree, minimum=0, maximum=MAX_RANK_DEGREE, why=_RANK_WHY)
    d = check_positive_int("d", d, maximum=MAX_RANK_DIM, why=_RANK_WHY)
    return math.comb(2 * (degree + d), 2 * degree)


def entry_threshold(n: int) -> float:
    """The entry bound √(ln n) at which attention stops being almost-linear (under SETH)."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not (math.isfinite(n) and n >= 2):
        raise ValueError(f"n={n!r} must be a finite number ≥ 2 for the threshold √(ln n) to be positive")
    return math.sqrt(math.log(n))


def output_error_bound(eps: float, v_max: float) -> float:
    """Tight ‖T − Att‖_max ≤ 2ε/(1 + √(1 − ε²))·‖V‖_max (≈ ε·‖V‖) when P has relative error ≤ ε
    on every logit (derived in docs/polynomial.md: the largest total-variation distance between a
    distribution p and its reweighting p(1 + δ)/Σp(1 + δ), |δ| ≤ ε, is ε/(1 + √(1 − ε²)), reached
    with δ = ±ε on masses (√(1 − ε²) − 1 + ε)/(2ε) and the rest, and values ±‖V‖_max there)."""
    eps = check_eps(eps)
    return 2.0 * eps / (1.0 + math.sqrt(1.0 - eps * eps)) * check_number("v_max", v_max, low=0)


def loose_output_error_bound(eps: float, v_max: float) -> float:
    """The first, 2×-loose form 2ε/(1−ε)·‖V‖_max (kept to show the tightening)."""
    eps = check_eps(eps)
    return 2.0 * eps / (1.0 - eps) * check_number("v_max", v_max, low=0)


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
    unit_roundoff = check_number("unit_roundoff", unit_roundoff, low=0, high=1, open_low=True, open_high=True)
    m, d = check_positive_int("m", m), check_positive_int("d", d)
    degree = check_positive_int("degree", degree, minimum=0)
    condition = check_number("condition", condition, low=1)  # Σ|b_i| / min P ≥ 1 since P(0) ≤ Σ|b_i|
    v_max = check_number("v_max", v_max, low=0)
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


@_finite_cost
def exact_forward_cost(n: int, m: int, d: int, dv: int, *, itemsize: int = 4, block: int | None = None) -> Cost:
    """Exact attention: 2·n·m·(d + dv) for the two products plus n·m exponentials.

    Memory: one (block, m) logit tile plus its exponentials (the whole n×m when block is None).
    """
    n, m, d, dv, itemsize = _sizes(n=n, m=m, d=d, dv=dv, itemsize=itemsize)
    rows = n if block is None else min(check_positive_int("block", block), n)
    return Cost(flops=2.0 * n * m * (d + dv) + n * m, bytes=2.0 * rows * m * itemsize)


def _sizes(**sizes: int) -> tuple[int, ...]:
    """Every size an integer ≥ 1 (ValueError naming the first that is not)."""
    return tuple(check_positive_int(name, value) for name, value in sizes.items())


@_finite_cost
def polynomial_forward_cost(
    n: int, m: int, d: int, dv: int, degree: int, *, itemsize: int = 4, block: int = 1024, factored: bool = False,
    fused: bool = False, virtual_top: bool = False,
) -> Cost:
    """Polynomial method: 2·(n + m)·r·(dv + 1) for the two products plus (n + m)·r to build features.

    Memory: the (r, dv + 1) key summary plus one (block, r) feature tile per side.

    ``fused=True`` is a kernel that builds every feature tile in cache and consumes it at once
    (polynomial_triton): the same FLOPs — the two products are exactly Ψ(K)ᵀ[V, 1] and Φ(Q)·W,
    2·(m + n)·r·(dv + 1), which FlopCounterMode counts on their torch equivalent (tested), plus
    ≈ r per token for the features — and memory 2·r·(dv + 1) (summary and weighted summary) plus
    the (n, dv + 1) query result plus one (block, r + dv + 1 + d) tile per side.

    ``virtual_top=True`` (with ``fused``) is the fused CPU extension (ditbench.attention.fused,
    csrc/feature_products.cpp), counted as it executes. With C = dv + 1 and r' = C(g − 1 + d, d)
    (g ≥ 2; r' = r below): the same products 2·(n + m)·r·C; building the r' lower monomials
    costs r' − 1 multiplies per token (d input scalings and one multiply per built row above
    degree 1); the top degree is never built: the key pass forms x_j·v_c (m·d·C multiplies) and
    the query pass folds x_j in with one multiply-add per (token, column, coordinate)
    (2·n·d·C); the wrapper adds the weights (r·C multiplies) and the division (n·dv).
    Memory as ``fused`` with the key tile (block, r' + (dv + 1)(d + 1) + d).

    ``factored=True`` counts the streamed kernel's layout instead (ditbench.attention.polynomial):
    only the r' = C(g − 1 + d, d) monomials of degree < g are built and the top degree rides on
    the high factor (1, x) of width d + 1, so the products are (r' × w) with w = (d + 1)(dv + 1):
    2·(n + m)·r'·w for the products plus (n + m)·(r' + 2w) for features, the key-side outer
    products and the query-side weighted sum; memory 2·r'·w (summary and weighted summary)
    plus one (block, r' + w) tile per side.
    """
    n, m, d, dv, itemsize, block = _sizes(n=n, m=m, d=d, dv=dv, itemsize=itemsize, block=block)
    degree = check_positive_int("degree", degree, minimum=0)
    if factored and fused:
        raise ValueError("factored and fused are two different layouts; pass at most one")
    if virtual_top and not fused:
        raise ValueError("virtual_top describes the fused CPU kernel; pass it with fused=True")
    if fused and virtual_top:
        r, c, top = feature_rank(d, degree), dv + 1, d if degree >= 2 else 0
        r_low = feature_rank(d, degree - 1) if top else r
        flops = (2.0 * (n + m) * r * c + (n + m) * (r_low - 1) + (m + 2 * n) * top * c  # the extension
                 + r * c + n * dv)  # weights and division (ditbench.attention.polynomial)
        tile = r_low + c * (1 + top) + d
        mem = (2 * r * c + n * c + 2 * min(block, max(n, m)) * tile) * itemsize
        return Cost(flops=flops, bytes=float(mem), rate="fused")
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


@_finite_cost
def exact_gradient_cost(n: int, d: int, *, itemsize: int = 4, block: int | None = None) -> Cost:
    """Closed-form dL/dX streamed over row blocks (ditbench.gradient.exact_gradient).

    Pass 1 (f·h): logits 2n²d, n² exps, f·h 2n²d. Pass 2: logits 2n²d, n² exps, q = c·hᵀ 2n²d,
    p = f∘(q − r) 2n², p·A2 2n²d. Total 10n²d + 4n² (+ O(nd²) for A1X, h and A1ᵀ(pA2)).
    Memory: three (block, n) tiles (logits/f, q, p) plus five (n, d) intermediates.
    """
    n, d, itemsize = _sizes(n=n, d=d, itemsize=itemsize)
    rows = n if block is None else min(check_positive_int("block", block), n)
    flops = 10.0 * n * n * d + 4.0 * n * n + 8.0 * n * d * d
    return Cost(flops=flops, bytes=float((3 * rows * n + 5 * n * d) * itemsize))


@_finite_cost
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
    n, d, itemsize, block = _sizes(n=n, d=d, itemsize=itemsize, block=block)
    k1, k2, _ = gradient_ranks(d, degree)
    if direct:
        k2 = d
    rows = min(block, n)
    flops = 4.0 * n * k1 * k2 * d + 10.0 * n * k1 * d + 2.0 * n * k1 * k2 + 2.0 * n * k1 + 2.0 * k1 * k2 * d * d
    mem = rows * (2 * k2 * d + 2 * k1 + k2) + 2 * k1 * k2 * d + k1 * k2 + 4 * n * d
    return Cost(flops=flops, bytes=float(mem * itemsize))


@_finite_cost
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


##################################################################################
#        Peer, baseline, autograd and DiT cost models (the one home of FLOPs)     #
##################################################################################

def uniform_cost(n: int, m: int, dv: int, *, itemsize: int = 4) -> Cost:
    """The uniform answer (every row = mean of V): m·dv additions; memory the (n, dv) output."""
    return Cost(flops=float(m * dv), bytes=float(n * dv * itemsize))


def performer_cost(n: int, m: int, d: int, dv: int, features: int, *, itemsize: int = 4, tile: int = 1024) -> Cost:
    """Performer/FAVOR+: projections 2·(n + m)·d·M, exponentials (n + m)·M, products
    2·(n + m)·M·(dv + 1). Memory: two (tile, M) feature tiles, the (M, dv + 1) summary, the (M, d)
    projection."""
    big_m = features
    flops = 2.0 * (n + m) * d * big_m + (n + m) * big_m + 2.0 * (n + m) * big_m * (dv + 1)
    rows = min(max(n, m), tile)
    return Cost(flops=flops, bytes=float((2 * rows * big_m + big_m * (dv + 1) + big_m * d) * itemsize))


def nystrom_cost(n: int, m: int, d: int, dv: int, landmarks: int, pinv_iterations: int, *, itemsize: int = 4) -> Cost:
    """Nyström: landmarks (n + m)·d; F, A, B logits 2·(n·l + l² + l·m)·d plus as many exps; B·V
    2·l·m·dv; pinv 8·l³ per iteration; A⁺(BV) 2·l²·dv; F·(…) 2·n·l·dv."""
    l = landmarks  # noqa: E741  (the paper's name)
    logits = n * l + l * l + l * m
    flops = (n + m) * d + 2.0 * logits * d + logits + 2.0 * l * m * dv
    flops += 8.0 * l**3 * pinv_iterations + 2.0 * l * l * dv + 2.0 * n * l * dv
    return Cost(flops=flops, bytes=float((logits + 4 * l * l + 2 * l * d) * itemsize))


def poly4_exact_cost(n: int, m: int, d: int, dv: int, *, itemsize: int = 4, rows: int = 1024) -> Cost:
    """Exact degree-4 polynomial attention: normalising 3·(n + m)·d; weights 2·n·m·d + 3·n·m (two
    squarings, a sum); product 2·n·m·dv. Memory: two (rows, m) weight tiles and the normalised inputs."""
    flops = 3.0 * (n + m) * d + 2.0 * n * m * (d + dv) + 3.0 * n * m
    rows = min(n, rows)
    return Cost(flops=flops, bytes=float((2 * rows * m + (n + m) * d) * itemsize))


def polysketch_cost(n: int, m: int, d: int, dv: int, sketch_size: int, *, itemsize: int = 4,
                    tile: int = 1024) -> Cost:
    """PolySketch: normalising 3·(n + m)·d; sketch 2·(n + m)·d·2r + (n + m)·r; self-tensor
    (n + m)·r²; products 2·(n + m)·r²·(dv + 1). Memory: two (tile, r²) feature tiles, the
    (r², dv + 1) summary and the normalised inputs."""
    r = sketch_size
    width = r * r
    flops = 3.0 * (n + m) * d + 4.0 * (n + m) * d * r + (n + m) * r
    flops += (n + m) * width + 2.0 * (n + m) * width * (dv + 1)
    rows = min(max(n, m), tile)
    return Cost(flops=flops, bytes=float((2 * rows * width + width * (dv + 1) + (n + m) * d) * itemsize))


def hyperattention_cost(n: int, m: int, d: int, dv: int, *, block_size: int, samples: int, lsh_num_projs: int,
                        min_seq_len: int, itemsize: int = 4) -> Cost:
    """HyperAttention: hashing 2·(n + m)·d·P; sorting ≈ (n + m)·log₂(n + m) comparisons; per query
    (kb + samples) logits at 2·d + 2·dv + 1 each (products, exp). Exact cost at n ≤ min_seq_len."""
    if n <= min_seq_len:
        return exact_forward_cost(n, m, d, dv, itemsize=itemsize, block=4096)
    kb = min(block_size, m)
    nb = math.ceil(m / kb)
    use = min(samples, m) if nb > 1 else 0
    rows = nb * math.ceil(n / nb)
    per_logit = 2 * d + 2 * dv + 1
    flops = 2.0 * (n + m) * d * lsh_num_projs + (n + m) * math.log2(n + m)
    flops += rows * kb * per_logit + n * use * per_logit
    mem = (2 * rows * kb + 2 * n * use + (rows + nb * kb) * (d + dv)) * itemsize
    return Cost(flops=flops, bytes=float(mem))


def autograd_gradient_cost(n: int, d: int, *, itemsize: int = 4, streamed: bool = True) -> Cost:
    """torch autograd through exact attention (ditbench.gradient.autograd_gradient): forward
    4n²d + n² exps; the backward recomputes the tile and does about three more n×n×d products.
    Memory: three (rows, n) tiles, rows = 256 (SDPA's CPU flash tile) when streamed, else n."""
    rows = 256 if streamed else n
    return Cost(flops=12.0 * n * n * d + 3.0 * n * n, bytes=float(3 * rows * n * itemsize))


def dit_linear_flops(tokens: int, hidden: int, mlp_ratio: float) -> float:
    """FLOPs of one DiT block's token-wise matmuls for one sample: qkv (3C²), proj (C²), MLP
    (2·ratio·C²), 2 FLOPs per multiply-add. adaLN (6C² per sample, independent of L), patch
    embedding and the final layer are left out (small next to these at L ≥ 16)."""
    return 2.0 * tokens * hidden * hidden * (3 + 1 + 2 * mlp_ratio)


def dit_cost(head: Cost, *, tokens: int, hidden: int, mlp_ratio: float, heads: int, blocks: int, batch: int,
             itemsize: int, backward: bool) -> Cost:
    """One DiT call: blocks × batch × (heads × one head's attention ``head`` + the linear layers);
    backward (forward + autograd) counted as 3× the forward. Live activations: about
    (2·ratio + 6) token-wide tensors per block (qkv, attention out, MLP hidden, norms); autograd
    keeps every block's, a forward only one block's at a time."""
    flops = blocks * batch * (heads * head.flops + dit_linear_flops(tokens, hidden, mlp_ratio))
    activations = tokens * hidden * itemsize * (2 * mlp_ratio + 6)
    memory = batch * (heads * head.bytes + activations * (blocks if backward else 1))
    return Cost(flops=flops * (3 if backward else 1), bytes=memory)


def dit_overhead_bytes(*, tokens: int, hidden: int, mlp_ratio: float, blocks: int, batch: int, itemsize: int,
                       backward: bool) -> float:
    """Memory a DiT measurement needs besides the call: weights in the case dtype plus the float64
    exact copy and the uniform copy (≈ 18·C² parameters per block: attention 4C², MLP 8C², adaLN
    6C²), plus one float64 activation set."""
    params = 18.0 * hidden**2 * blocks
    activations = batch * tokens * hidden * 8 * (2 * mlp_ratio + 6)
    return params * (2 * itemsize + 8) + activations * (blocks if backward else 1)


def latent_basis_flops(ambient: int, latent: int) -> float:
    """Householder QR of a float64 (ambient × latent) Gaussian matrix: 2·D·d0² − ⅔·d0³ FLOPs (the
    latent DiT inputs' orthonormal basis, ditbench.dit.latent_batch)."""
    return 2.0 * ambient * latent**2 - 2.0 / 3.0 * latent**3
