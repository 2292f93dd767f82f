"""Alman–Song polynomial-method attention (DESIGN §3.1): T = D̃⁻¹Φ(Q)(Ψ(K)ᵀV), streamed.

Hot path (no n×r matrix, no Python loop over monomials):
1. One reduction gives ρ_q = max‖q_i‖₂, ρ_k = max‖k_j‖₂ and the Cauchy–Schwarz logit bound
   R₀ = scale·ρ_q·ρ_k (inflated by its rounding) ≤ R, the radius the polynomial is built for.
2. Inputs are normalised, q̂ = q/ρ_q and k̂ = k/ρ_k, so every raw monomial has |q̂^α| ≤ 1, and
   ⟨q̂, k̂⟩·γ = logit/R with γ = R₀/R ≤ 1. All weights — b_i·γ^i·mult(α) — are folded *once*
   into the (r, dv + 1) key summary instead of into every feature.
3. Factored top degree: every monomial of degree g is (a degree-(g−1) monomial)·x_j, so only
   the r' = C(g − 1 + d, d) monomials of degree < g are built (M, an (r', block) tile) and the
   top degree rides on the "high" factor h = (1, x_0, …, x_{d−1}):
   key pass   Z = Σ_blocks M(k̂)·[h(k̂) ⊗ (V, 1)]               (r', (d + 1)·(dv + 1)),
   weights    W = Ω ∘ Z, Ω holding w_α at α's canonical (low, high) position and 0 elsewhere,
   query pass [num, den] = Σ_j h_j(q̂)·(Wᵀ M(q̂))_j per block;  T = num/den.
   This builds 1/3 of the features at g = 4, d = 8 and turns the skinny (r × (dv + 1)) products
   into ones (d + 1)× wider, which BLAS runs several times closer to peak (measured in
   benchmarks/perf_forward.py); theory.polynomial_forward_cost(factored=True) counts it.
Memory O((n + m)·d + r'·d·dv + block·r'). The public :class:`PolynomialFeatures` (split weights)
gives the same Φ and Ψ explicitly for the gradient work.

``impl="fused"`` (the default ``"auto"`` picks it on CPU without autograd when the extension
builds, :mod:`.fused`) runs steps 1–2 the same way and then the *unfactored* products in C++:
Z = Σ_t M(k̂_t) ⊗ (v_t, 1) over all r = C(g + d, d) monomials, W = w ∘ Z, and per query tile
M(q̂)ᵀW, each feature tile built and consumed in cache, the top degree never built
(theory.polynomial_forward_cost(fused=True, virtual_top=True)).
``impl="torch"`` is the pure-torch path above; which one ran is recorded as the ``impl`` column.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import theory
from .._checks import (
    BLOCK_SIZE, EPS, MEMORY_BUDGET, Param, check_eps, check_output, check_positive_int, check_qkv, resolve_scale,
    value_scale,
)
from ..errors import KernelRefusal, check_normalisers
from ..expapprox import GRID_SLACK, MAX_DEGREE, MAX_RADIUS, METHODS, ExpApprox, check_method, exp_approx, minimal_approx
from . import fused
from .features import MonomialTable, monomial_table, monomial_weights, raw_monomials
from .registry import Kernel, Problem, register

# Bytes of one (batch, r, block) feature tile: 2 MiB keeps a tile in a per-core L2/L3 share on
# the reference CPU while amortising the ~g·d small torch calls that build it (measured in
# benchmarks/perf_forward.py: 1–4 MiB tiles are within noise of each other at d = 8).
TILE_BYTES = 2 << 20
# Default cap on the kernel's extra memory (feature tiles + key summary), bytes.
DEFAULT_MEMORY_BUDGET = 2 << 30
# Fused kernel: one key-pass tile per worker of about 256 KiB (a per-core L2 share): the
# r' = C(g − 1 + d, d) built monomials, the dv + 1 value columns, the d coordinates and, for
# the virtual top degree, d·(dv + 1) products x_j·v_c, per token (csrc/feature_products.cpp;
# the extension rounds to a multiple of 16 tokens, 16..1024).
FUSED_TILE_BYTES = 256 << 10
IMPLS = ("auto", "fused", "torch")


def _fused_block(d: int, dv: int, degree: int, itemsize: int) -> int:
    top = d if degree >= 2 else 0  # the top degree rides on x_j·v_c (csrc/feature_products.cpp)
    width = theory.feature_rank(d, degree - 1 if top else degree) + (dv + 1) * (1 + top) + d
    return max(32, min(1024, FUSED_TILE_BYTES // (width * itemsize) // 32 * 32))


def resolve_impl(impl: str, device: str, needs_grad: bool = False) -> str:
    """Which implementation ``impl`` means here: "fused" or "torch" (KernelRefusal when "fused" is
    asked for but cannot run here, naming why; ValueError for an unknown ``impl``)."""
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r} is not allowed; allowed values: {list(IMPLS)}")
    if impl == "torch":
        return "torch"
    why = ("the fused kernel runs on CPU only" if device != "cpu" else
           "the fused kernel has no autograd; inputs require grad" if needs_grad else fused.unavailable_reason())
    if impl == "fused" and why:
        raise KernelRefusal(f"impl='fused' cannot run: {why}; use impl='auto' or 'torch'")
    return "torch" if why else "fused"


def _default_block(batch: int, d: int, dv: int, degree: int, itemsize: int) -> int:
    """Token rows per tile so one (batch, r' + (d + 1)(dv + 1), block) tile set is about
    TILE_BYTES (a multiple of 64, at least 64)."""
    width = theory.feature_rank(d, max(degree - 1, 0)) + (d + 1) * (dv + 1)
    return max(64, TILE_BYTES // (batch * width * itemsize) // 64 * 64)


DEGREE_WHY = "the verified range of the float64 exp approximation, ditbench.expapprox.MAX_DEGREE"
# Parameters of P ≈ exp shared by the forward kernel and the gradient routines.
DEGREE = Param("int", low=0, high=MAX_DEGREE, optional=True, why=DEGREE_WHY)
RADIUS = Param("float", low=0, high=MAX_RADIUS, optional=True, why="ditbench.expapprox.MAX_RADIUS")
CONSTRUCTION = Param("str", choices=METHODS, why="ditbench.expapprox.METHODS")


def choose_approx(radius: float, eps: float, degree: int | None, method: str = "minimax") -> ExpApprox:
    """The verified P ≈ exp on [−radius, radius]: minimal degree for ``eps`` (built for a radius
    ≤ 0.55 % larger, ``.radius``), or the given degree at exactly ``radius``. ``method``: the
    construction (ditbench.expapprox.METHODS). Shared by the forward kernel and the gradient
    routines so both use one P.

    Bad arguments raise ValueError; a case the method cannot serve raises KernelRefusal: no degree
    reaches ``eps`` on this radius (or the radius is past what P is verified on), or the given
    degree's relative error is ≥ 1 (P could vanish, and a normaliser with it)."""
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius={radius} must be finite and ≥ 0")
    method = check_method(method)
    if degree is None:
        eps = check_eps(eps)
        try:
            return minimal_approx(radius, eps, method=method)
        except ValueError as err:  # arguments checked above: what is left is "no degree serves this case"
            raise KernelRefusal(str(err)) from err
    degree = check_positive_int("degree", degree, minimum=0, maximum=MAX_DEGREE, why=DEGREE_WHY)
    try:
        approx = exp_approx(radius, degree, method)
    except ValueError as err:  # arguments checked above: the radius is past the verified range
        raise KernelRefusal(str(err)) from err
    if approx.relative_error >= 1.0:
        raise KernelRefusal(
            f"degree={degree} has relative error {approx.relative_error:.3g} ≥ 1 for exp on "
            f"[−{radius:g}, {radius:g}]: P can be non-positive, so normalisers could vanish; "
            f"use degree ≥ {minimal_approx(radius, 0.5, method=method).degree} or degree=None with eps"
        )
    return approx


def polynomial_radius(q: Tensor, k: Tensor, s: float, radius: float | None) -> tuple[float, float, float]:
    """(ρ_q, ρ_k, R): the max norms and the logit radius the kernel requests P for.

    Cauchy–Schwarz: every |logit| ≤ s·ρ_q·ρ_k; each norm carries ≤ (d + 2)·u relative rounding,
    so inflating by 1 + 2(d + 2)u keeps the bound a true upper bound. An explicit ``radius`` below
    it is refused (ValueError naming both)."""
    d = q.shape[-1]
    rho_q, rho_k = theory.norm_maxima(q, k, dtype=None)  # in the inputs' dtype: one host sync
    slack = 2 * (d + 2) * torch.finfo(q.dtype).eps
    bound = s * rho_q * rho_k * (1 + slack)
    if radius is None:
        return rho_q, rho_k, bound
    r_poly = float(radius)
    if not (math.isfinite(r_poly) and r_poly >= 0):
        raise ValueError(f"radius={radius} must be finite and ≥ 0")
    if r_poly < bound * (1 - 2 * slack):  # below the bound even after rounding
        raise ValueError(
            f"radius={r_poly:g} is smaller than the inputs' logit bound scale·max‖q‖·max‖k‖={bound:g}; "
            f"pass radius ≥ {bound:g} or None"
        )
    return rho_q, rho_k, r_poly


def memory_hint(fits: int, radius: float, rank: int, rank_name: str) -> str:
    """The one memory-refusal hint (forward kernel and gradient routines): the largest degree
    ``fits`` that the budget allows (−1: none; ``rank`` its feature rank, called ``rank_name``)
    and the eps it reaches at ``radius``."""
    if fits < 0:
        return "not even degree 0 fits; raise memory_budget or lower block_size"
    best = exp_approx(radius, fits).relative_error * GRID_SLACK
    if best >= 1:
        return f"degree ≤ {fits} fits but cannot reach eps < 1 at radius {radius:g}"
    return f"degree ≤ {fits} ({rank_name} {rank}) fits, i.e. eps ≥ {best:.2g} at radius {radius:g}"


def _check_memory(batch: int, n: int, m: int, d: int, dv: int, approx: ExpApprox, itemsize: int,
                  block: int, budget: float, radius: float, eps: float, impl: str = "torch") -> None:
    layout = {"factored": impl != "fused", "fused": impl == "fused", "virtual_top": impl == "fused"}
    need = batch * theory.polynomial_forward_cost(
        n, m, d, dv, approx.degree, itemsize=itemsize, block=block, **layout).bytes
    if need <= budget:
        return
    fits = theory.max_degree_within(n, m, d, dv, budget / batch, itemsize=itemsize, block=block, **layout)
    hint = memory_hint(fits, radius, theory.feature_rank(d, max(fits, 0)), "rank")
    raise KernelRefusal(
        f"degree {approx.degree} (rank {theory.feature_rank(d, approx.degree)}, eps={eps:g}, radius={radius:g}) "
        f"needs {need / 2**20:.1f} MiB > memory_budget={budget / 2**20:.1f} MiB; {hint}"
    )


def polynomial_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, eps: float = 1e-3,
    degree: int | None = None, radius: float | None = None, block_size: int | None = None,
    memory_budget: float | None = None, impl: str = "auto", construction: str = "minimax",
) -> Tensor:
    """Polynomial-method approximation of softmax(scale·q kᵀ)·v.

    Args:
        q: ``(..., n, d)`` queries. k: ``(..., m, d)`` keys. v: ``(..., m, dv)`` values. Leading
            dims broadcast; float32 or float64; any device (computation stays on it).
        scale: logit scale; ``None`` means 1/√d.
        eps: target relative error of P ≈ exp on [−radius, radius], in (0, 1).
        degree: polynomial degree; ``None`` = the minimal verified degree for ``eps``. An explicit
            degree overrides ``eps`` (its realised error is what the guarantee then uses).
        radius: logit radius R the polynomial is built for; ``None`` = scale·max‖q‖₂·max‖k‖₂.
            ValueError if smaller than that bound.
        block_size: token rows per feature tile; ``None`` = about 2 MiB tiles.
        memory_budget: cap in bytes on extra memory (default 2 GiB); ValueError naming the
            degree/eps that would fit when exceeded.
        impl: "auto" (fused on CPU without autograd when the extension builds, else torch),
            "fused" (KernelRefusal when it cannot run here) or "torch" (module docstring).
        construction: how P ≈ exp is built: ``"minimax"`` (relative-error Remez, the default) or
            ``"chebyshev"`` (the first construction, more degrees at large R; for comparison).

    Returns:
        ``(..., n, dv)`` in the inputs' dtype. With P's relative error ε on every logit,
        ‖T − Att‖_max ≤ 2ε/(1 + √(1 − ε²))·‖V‖_max in exact arithmetic (theory.output_error_bound);
        floating-point rounding adds ditbench.attention.polybounds.rounding_bound.
        Raises :class:`ditbench.errors.NormaliserError` if any normaliser is not positive and
        finite (never returns NaN); :class:`ditbench.errors.KernelRefusal` for a case it does not
        serve (no degree reaches eps on the radius, over the memory budget).

    Autograd flows through every step and differentiates the polynomial actually used: with an
    explicit radius and degree that is exactly ∂T/∂(q, k, v); with ``radius=None`` the radius (and
    so P) is treated as a constant of the inputs.
    """
    n, m, d, dv = check_qkv(q, k, v)
    if q.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"polynomial_attention supports float32 and float64, not {q.dtype}")
    s = resolve_scale(scale, d)
    eps = check_eps(eps)
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else float(memory_budget)
    if not budget > 0:
        raise ValueError(f"memory_budget={memory_budget} must be > 0 bytes")
    batch_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    batch = math.prod(batch_shape)
    unit = value_scale(v, m)  # an exact power of two: the key summary sums m weighted values
    v = v * unit if unit != 1.0 else v
    needs_grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v))
    use = resolve_impl(impl, q.device.type, needs_grad)

    rho_q, rho_k, r_poly = polynomial_radius(q, k, s, radius)  # the one host sync before the loops
    approx = choose_approx(r_poly, eps, degree, construction)
    r_poly = approx.radius  # ≥ the bound (the minimal construction rounds the radius up)
    itemsize = q.dtype.itemsize
    default = _fused_block(d, dv, approx.degree, itemsize) if use == "fused" else \
        _default_block(batch, d, dv, approx.degree, itemsize)
    block = default if block_size is None else check_positive_int("block_size", block_size)
    _check_memory(batch, n, m, d, dv, approx, itemsize, block, budget, r_poly, eps, use)

    # Per-degree coefficients in the normalised variable: logit/R = γ·⟨q̂, k̂⟩.
    gamma = s * rho_q * rho_k / r_poly if r_poly > 0 else 0.0  # exactly the ρ's used below
    coeffs = torch.tensor([b * gamma**i for i, b in enumerate(approx.coefficients)],
                          dtype=torch.float64, device=q.device)  # (g + 1,)
    if use == "fused":
        qb, kb, vb = (x.expand(*batch_shape, *x.shape[-2:]).reshape(batch, *x.shape[-2:]) for x in (q, k, v))
        z = fused.key_summary(kb, vb, 1.0 / (rho_k or 1.0), approx.degree, block, ones=True)  # (B, r, dv + 1)
        w = z * monomial_weights(d, coeffs).to(q.dtype)[:, None]  # (B, r, dv + 1)
        att, worst = fused.query_normalised(qb, w, 1.0 / (rho_q or 1.0), approx.degree, block)  # (B, n, dv), ()
        _check_normalisers(worst, approx.degree, r_poly, q.dtype)
        return _finish(att.reshape(*batch_shape, n, dv), unit)

    low, canon = _factored_layout(d, approx.degree, q.device)  # low table, (r,) flat positions
    high = d + 1 if approx.degree >= 1 else 1  # width of the high factor h
    omega = coeffs.new_zeros(low.rank * high).index_copy_(0, canon, monomial_weights(d, coeffs))
    omega = omega.to(q.dtype).view(low.rank, high, 1)  # (r', d + 1, 1)

    qt = (q.expand(*batch_shape, n, d).reshape(batch, n, d) / (rho_q or 1.0)).transpose(-1, -2)  # (B, d, n)
    kn = k.expand(*batch_shape, m, d).reshape(batch, m, d) / (rho_k or 1.0)  # (B, m, d)
    kt = kn.transpose(-1, -2)  # (B, d, m)
    va = torch.cat([v.expand(*batch_shape, m, dv).reshape(batch, m, dv),
                    v.new_ones(batch, m, 1)], dim=-1)  # (B, m, dv + 1)
    ka = torch.cat([kn.new_ones(batch, m, 1), kn], dim=-1)[..., :high]  # (B, m, d + 1): h(k̂), token-major

    z = v.new_zeros(batch, low.rank, high * (dv + 1))  # (B, r', (d + 1)(dv + 1))
    # Tiles by torch.split, not slicing: under autograd a slice's backward materialises a zero
    # gradient of the whole operand (B·d·m floats) for every tile — O(m²/block) time and, above
    # glibc's 32 MiB mmap threshold, as many page-faulted allocations per call (4 GiB at m = 2^21,
    # docs/fit.md "Designs") — where split's backward concatenates the tiles' gradients once.
    for kb, ab, vb in zip(kt.split(block, dim=-1), ka.split(block, dim=1), va.split(block, dim=1)):
        kb = kb.contiguous()  # (B, d, b)
        hv = ab[..., None] * vb[:, :, None, :]  # (B, b, d + 1, dv + 1)
        z = torch.baddbmm(z, raw_monomials(kb, low), hv.flatten(-2))  # (B, r', (d + 1)(dv + 1))
    # Weighted summary, transposed so the query product is (w × r')·(r' × b) with both operands
    # contiguous (a transposed feature operand costs BLAS a copy of the whole tile).
    wt = (z.view(batch, low.rank, high, dv + 1) * omega).flatten(-2)  # (B, r', (d + 1)(dv + 1))
    wt = wt.transpose(-1, -2).contiguous()  # (B, (d + 1)(dv + 1), r')

    out, den_min = [], []
    for qb in qt.split(block, dim=-1):
        qb = qb.contiguous()  # (B, d, b)
        y = (wt @ raw_monomials(qb, low)).view(batch, high, dv + 1, -1)  # (B, d + 1, dv + 1, b)
        res = (_high(qb, high)[:, :, None, :] * y).sum(dim=1)  # (B, dv + 1, b)
        den = res[:, dv:]  # (B, 1, b)
        den_min.append(den.detach().amin())
        out.append(res[:, :dv] / den)  # (B, dv, b)
    result = torch.cat(out, dim=-1).transpose(-1, -2)  # (B, n, dv)
    _check_normalisers(torch.stack(den_min).amin(), approx.degree, r_poly, q.dtype)
    return _finish(result.reshape(*batch_shape, n, dv), unit)  # copies the transposed layout once (n·dv)


def _finish(result: Tensor, unit: float) -> Tensor:
    """Undo the exact power-of-two value scaling; never return NaN/inf."""
    return check_output("polynomial", result / unit if unit != 1.0 else result)


def _check_normalisers(worst: Tensor, degree: int, radius: float, dtype: torch.dtype) -> None:
    check_normalisers(float(worst), kernel="polynomial",
                      context=f"at degree {degree}, radius {radius:g}, dtype {dtype}",
                      hint="rounding overwhelmed P's positivity; use float64, a larger eps or a smaller radius")


def _high(xb: Tensor, width: int) -> Tensor:
    """The high factor h = (1, x_0, …, x_{d−1}) of a ``(B, d, b)`` block → ``(B, width, b)``."""
    ones = xb.new_ones(*xb.shape[:-2], 1, xb.shape[-1])  # (B, 1, b)
    return ones if width == 1 else torch.cat([ones, xb], dim=-2)


@lru_cache(maxsize=64)
def _factored_layout(d: int, degree: int, device: torch.device) -> tuple[MonomialTable, Tensor]:
    """The table of degree < g monomials (degree 0 when g = 0) and, for every monomial α of the
    full degree-g table, its flat position low·(d + 1) + high in the (r', d + 1) product layout:
    (α, 0) when |α| < g, (α − e_j, 1 + j) when |α| = g with j its largest index."""
    full = monomial_table(d, degree)
    low = monomial_table(d, max(degree - 1, 0))
    if degree == 0:
        return low, torch.zeros(1, dtype=torch.int64, device=device)
    high = d + 1
    canon = np.empty(full.rank, dtype=np.int64)
    canon[: low.rank] = np.arange(low.rank) * high  # the low table is a prefix of the full one
    # Top degree: degree 1 is (constant)·x_j; higher degrees come from the table's last level.
    steps = [(1 + j, 0, 1, j) for j in range(d)] if degree == 1 else full.levels[-1]
    for dst, src, count, coord in steps:
        canon[dst : dst + count] = np.arange(src, src + count) * high + 1 + coord
    return low, torch.as_tensor(canon, device=device)


##################################################################################
#                                Registration                                    #
##################################################################################

def _approx_for(p: Problem, params: Mapping[str, Any]) -> ExpApprox:
    radius = params["radius"] if params["radius"] is not None else p.radius_bound()
    if radius is None:
        raise KernelRefusal("polynomial: the problem has no entry bound and no radius was given")
    return choose_approx(float(radius), float(params["eps"]), params["degree"], params["construction"])


def _impl(p: Problem, params: Mapping[str, Any]) -> str:
    return resolve_impl(params["impl"], p.device)


def _block(p: Problem, params: Mapping[str, Any], degree: int, impl: str) -> int:
    if params["block_size"] is not None:
        return int(params["block_size"])
    if impl == "fused":
        return _fused_block(p.d, p.dv, degree, p.dtype.itemsize)
    return _default_block(1, p.d, p.dv, degree, p.dtype.itemsize)


def _cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    g, impl = _approx_for(p, params).degree, _impl(p, params)
    return theory.polynomial_forward_cost(p.n, p.m, p.d, p.dv, g, itemsize=p.dtype.itemsize,
                                         block=_block(p, params, g, impl), factored=impl != "fused",
                                         fused=impl == "fused", virtual_top=impl == "fused")


def _limits(p: Problem, params: Mapping[str, Any]) -> list[str]:
    if p.dtype not in (torch.float32, torch.float64):
        return []  # the generic dtype check already explains this
    try:
        impl = _impl(p, params)
        approx = _approx_for(p, params)
        budget = DEFAULT_MEMORY_BUDGET if params["memory_budget"] is None else float(params["memory_budget"])
        _check_memory(1, p.n, p.m, p.d, p.dv, approx, p.dtype.itemsize, _block(p, params, approx.degree, impl),
                      budget, approx.radius, float(params["eps"]), impl)
    except KernelRefusal as err:  # degree unreachable, over budget, fused impl unavailable
        return [f"polynomial: {err}"]
    return []


def _describe(p: Problem, params: Mapping[str, Any], inputs: tuple[Tensor, ...] | None = None,
              rows: Tensor | None = None) -> dict[str, Any]:
    """What the kernel uses: degree, rank, the radius P was built for and P's realised relative
    error. Without ``inputs``, for the problem's worst-case radius scale·d·B² (the prediction);
    with ``inputs`` (q, k, v) exactly what a call on them runs (realised radius), plus the
    guarantee on them: ``err_bound`` (exact arithmetic) and ``rounding_bound`` (the inputs'
    dtype, on query ``rows``; ditbench.attention.polybounds)."""
    if inputs is None:
        approx = _approx_for(p, params)
        return {"degree": approx.degree, "rank": theory.feature_rank(p.d, approx.degree), "radius": approx.radius,
                "approx_error": approx.relative_error, "impl": _impl(p, params)}
    from .polybounds import guarantee

    q, k, v = inputs[:3]
    s = resolve_scale(p.scale, q.shape[-1])
    _, _, r_poly = polynomial_radius(q, k, s, params["radius"])
    approx = choose_approx(r_poly, float(params["eps"]), params["degree"], params["construction"])
    impl = _impl(p, params)
    block = _block(p, params, approx.degree, impl)
    return {"degree": approx.degree, "rank": theory.feature_rank(p.d, approx.degree), "radius": approx.radius,
            "approx_error": approx.relative_error, "impl": impl,
            **guarantee(q, k, v, s, approx, block=block, rows=rows)}


POLYNOMIAL = register(Kernel(
    name="polynomial", fn=polynomial_attention, op="forward", exact=False,
    description="Alman–Song polynomial method: symmetric-monomial features, streamed (O((n+m)·r·dv))",
    params={"eps": 1e-3, "degree": None, "radius": None, "block_size": None, "memory_budget": None,
            "impl": "auto", "construction": "minimax"},
    schema={"eps": EPS, "degree": DEGREE, "radius": RADIUS, "block_size": BLOCK_SIZE, "memory_budget": MEMORY_BUDGET,
            "impl": Param("str", choices=IMPLS), "construction": CONSTRUCTION},
    cost=_cost, limits=_limits, describe=_describe,
))
