"""The chained low-rank gradient of Alman & Song 2024 (DESIGN §3.2, corrected orientation).

1. f ≈ f̃ = U1V1ᵀ, rank k1 = C(g + d, d): U1 = Φ(A1X) row-normalised by Φ(A1X)(Ψ(A2)ᵀ1), V1 = Ψ(A2)
   (the polynomial kernel's public feature maps, :class:`PolynomialFeatures`).
2. c̃ = U1(V1ᵀh) − E with h = A3Y.
3. q̃ = c̃hᵀ = U2V2ᵀ. ``q_factor="paper"``: U2 = [U1, E], V2 = [h(hᵀV1), −h], k2 = k1 + d.
   ``q_factor="direct"``: U2 = c̃, V2 = h, k2 = d (c̃ is already an (n, d) matrix, so the paper's
   detour through U1 is not needed; k3 drops from k1² + k1·d to k1·d).
4. p̃1 = f̃∘q̃ = (U1⊘U2)(V1⊘V2)ᵀ, rank k3 = k1·k2 (⊘: row-wise Kronecker product).
5. r̃_i = U1[i](V1ᵀV2)U2[i]ᵀ; p̃2 = diag(r̃)f̃.
6. dL/dX ≈ s·[A1ᵀp̃1A2 − (A1ᵀdiag(r̃)U1)(V1ᵀA2)].

Contraction order for step 6 (never n×n, never n×k3): A1ᵀp̃1A2 = Σ_{a,b} G_U[a,b]⊗G_V[a,b] with
G_U[a,b,:] = Σ_i U1[i,a]U2[i,b]A1[i,:] and G_V[a,b,:] = Σ_j V1[j,a]V2[j,b]A2[j,:], each (k1, k2, d).
Per row block G_U += U1_bᵀ·(U2_b ⊗ A1_b), one (k1 × b)·(b × k2·d) matmul: time O(n·k1·k2·d),
memory O(block·k2·d + k1·k2·d). Features are rebuilt per block rather than stored (O(block·k1)).

``impl="fused"`` (chosen by ``"auto"`` on CPU without autograd when the extension builds) runs the
two key passes — Ψ(A2)ᵀ[1, h, A2] and G_V — as fused feature products
(:func:`ditbench.attention.fused.key_summary`: each feature tile built and consumed in cache,
Ψ's weights applied once to the (k1, ·) result). With ``q_factor="direct"`` the query pass is
fused too: one :func:`~ditbench.attention.fused.query_apply` gives Φ(A1X)·[Ψᵀ1, V1ᵀh] (the
normalisers and c̃ = U1V1ᵀh), from which U2 = c̃ − E and r̃ = ⟨c̃, U2⟩ follow per row, and one
``key_summary`` over the query rows gives G_U and A1ᵀdiag(r̃)U1 (Φ = M·diag(φ_w), U1 = Φ/den).
With ``q_factor="paper"`` U2 = [U1, E] holds the features themselves, so G_U is a product of
features with features (k1 × k1·d) that the fused ops do not form; that query pass stays in torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .. import theory
from .._checks import check_eps, check_positive_int
from ..attention import fused
from ..attention.features import PolynomialFeatures, _device_table
from ..attention.polynomial import choose_approx, memory_hint, resolve_impl
from ..errors import KernelRefusal, check_normalisers
from ..expapprox import ExpApprox
from .problem import check_gradient, check_gradient_inputs, check_memory_budget, check_poly_dtype, check_products

QFactor = Literal["paper", "direct"]
# Bytes of one block's Kronecker tile (block, k2·d) plus features: 2 MiB, as the forward kernel.
TILE_BYTES = 2 << 20


@dataclass(frozen=True)
class LowRankInfo:
    """How :func:`lowrank_gradient` approximated the problem.

    degree: g of P ≈ exp. radius: R, the logit bound P was built for (logit units).
    relative_error: realised max |P/exp − 1| on [−R, R]. k1, k2, k3: ranks of f̃, q̃, p̃1.
    block_size: rows per tile. predicted_bytes: theory.lowrank_gradient_cost(...).bytes.
    """

    degree: int
    radius: float
    relative_error: float
    k1: int
    k2: int
    k3: int
    block_size: int
    predicted_bytes: float




def _ranks(d: int, degree: int, q_factor: QFactor) -> tuple[int, int, int]:
    k1 = theory.feature_rank(d, degree)
    k2 = k1 + d if q_factor == "paper" else d
    return k1, k2, k1 * k2


def default_block(d: int, degree: int, q_factor: QFactor, itemsize: int) -> int:
    """Rows per tile so one block's (block, k2·d + k1 + k2) tiles are about TILE_BYTES."""
    k1, k2, _ = _ranks(d, degree, q_factor)
    return max(64, TILE_BYTES // ((k2 * d + k1 + k2) * itemsize) // 64 * 64)


def predicted_bytes(n: int, d: int, degree: int, q_factor: QFactor, itemsize: int, block: int) -> float:
    return theory.lowrank_gradient_cost(n, d, degree, itemsize=itemsize, block=block,
                                        direct=q_factor == "direct").bytes


def check_memory(n: int, d: int, approx: ExpApprox, q_factor: QFactor, itemsize: int, block: int,
                 budget: float, eps: float) -> float:
    """Predicted bytes, or KernelRefusal naming the largest degree (and the eps it reaches) that fits."""
    need = predicted_bytes(n, d, approx.degree, q_factor, itemsize, block)
    if need <= budget:
        return need
    fits = -1
    while predicted_bytes(n, d, fits + 1, q_factor, itemsize, block) <= budget and fits < approx.degree:
        fits += 1
    hint = memory_hint(fits, approx.radius, theory.feature_rank(d, max(fits, 0)), "k1 =")
    k1, k2, k3 = _ranks(d, approx.degree, q_factor)
    raise KernelRefusal(
        f"lowrank_gradient at degree {approx.degree} (k1={k1}, k2={k2}, k3={k3}; "
        f"eps={eps:g}, radius={approx.radius:g}) "
        f"needs {need / 2**20:.1f} MiB > memory_budget={budget / 2**20:.1f} MiB; {hint}"
    )


def lowrank_gradient(
    a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, *,
    scale: float | None = None, eps: float = 1e-3, degree: int | None = None,
    q_factor: QFactor = "paper", block_size: int | None = None, memory_budget: float | None = None,
    return_info: bool = False, impl: str = "auto",
) -> Tensor | tuple[Tensor, LowRankInfo]:
    """Almost-linear approximation of dL/dX by the chained low-rank algorithm (module docstring).

    Args:
        a1, a2, a3, e: ``(n, d)``. x, y: ``(d, d)``. float32 or float64, one device.
        scale: s; ``None`` means 1/√d.
        eps: target relative error of P ≈ exp on [−R, R], R = s·max‖(A1X)_i‖₂·max‖A2_j‖₂; in (0, 1).
        degree: explicit degree of P (overrides eps; refused if its relative error is ≥ 1).
        q_factor: ``"paper"`` (k2 = k1 + d, as AS24) or ``"direct"`` (k2 = d).
        block_size: rows per tile; ``None`` = about 2 MiB tiles.
        memory_budget: cap on predicted extra bytes (default 2 GiB); ValueError naming the
            degree / eps that would fit when exceeded (k3 grows like k1²).
        return_info: also return a :class:`LowRankInfo` (degree, radius, ranks).
        impl: "auto", "fused" or "torch": how the key passes' feature products run (module docstring).

    Returns:
        ``(d, d)`` dL/dX (and the info). Error bound: :func:`ditbench.gradient.gradient_error_bound`.
        Time O(n·k1·k2·d); raises :class:`ditbench.errors.NormaliserError` if a normaliser
        Φ(A1X)_i·Ψ(A2)ᵀ1 is not positive, KernelRefusal over the memory budget.
    """
    g = check_gradient_inputs(a1, a2, a3, x, y, e, scale)
    check_poly_dtype("lowrank_gradient", g.dtype)
    eps = check_eps(eps)
    if q_factor not in ("paper", "direct"):
        raise ValueError(f"q_factor={q_factor!r} must be 'paper' or 'direct'")
    budget = check_memory_budget(memory_budget)
    n, d, s = g.n, g.d, g.scale
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (a1, a2, a3, x, y, e))
    use = resolve_impl(impl, a1.device.type, needs_grad)
    qx = a1 @ x  # (n, d)
    h = a3 @ y  # (n, d)
    check_products("lowrank_gradient", qx, a2, h, s)
    approx = choose_approx(theory.logit_radius(qx, a2, s), eps, degree)
    itemsize = g.dtype.itemsize
    block = (default_block(d, approx.degree, q_factor, itemsize) if block_size is None
             else check_positive_int("block_size", block_size))
    need = check_memory(n, d, approx, q_factor, itemsize, block, budget, eps)
    feats = PolynomialFeatures(d=d, scale=s, radius=approx.radius, approx=approx)
    k1, k2, k3 = _ranks(d, approx.degree, q_factor)

    def psi_t(rows: slice, vals: Tensor) -> Tensor:
        """Ψ(A2[rows])ᵀ·vals, vals (b, c) → (k1, c): fused (features in cache) or via feats.psi."""
        if use == "fused":
            return fused.key_summary(a2[None, rows], vals[None], gain, approx.degree)[0] * psi_w[:, None]
        return feats.psi(a2[rows]).t() @ vals

    if use == "fused":  # Ψ = M(gain·x)·diag(psi_w), as PolynomialFeatures.psi
        gain = math.sqrt(s / approx.radius) if approx.radius > 0 else math.sqrt(s)
        degrees, mult = _device_table(d, approx.degree, a2.device)
        b = torch.tensor(approx.coefficients, dtype=torch.float64, device=a2.device)
        psi_w = (b.abs()[degrees] * mult).sqrt().to(g.dtype)  # (k1,)

    # Key pass 1: Ψ(A2)ᵀ1, V1ᵀh, V1ᵀA2, as one product with [1, h, A2] (n, 1 + 2d).
    ones_h_a2 = torch.cat([h.new_ones(n, 1), h, a2], dim=1)  # (n, 1 + 2d)
    if use == "fused":
        z1 = psi_t(slice(0, n), ones_h_a2)  # (k1, 1 + 2d)
    else:
        z1 = h.new_zeros(k1, 1 + 2 * d)
        for j in range(0, n, block):
            z1 += psi_t(slice(j, j + block), ones_h_a2[j : j + block])
    psi_sum, v1h, v1a2 = z1[:, 0], z1[:, 1 : 1 + d], z1[:, 1 + d :]  # (k1,), (k1, d), (k1, d)
    m = torch.cat([v1h @ v1h.t(), -v1h], dim=1) if q_factor == "paper" else v1h  # (k1, k2) = V1ᵀV2

    # Key pass 2: G_V = Σ_j V1[j] ⊗ V2[j] ⊗ A2[j].
    g_v = h.new_zeros(k1, k2 * d)  # (k1, k2·d)
    for j in range(0, n, block):
        hb = h[j : j + block]  # (b, d)
        v2 = torch.cat([hb @ v1h.t(), -hb], dim=1) if q_factor == "paper" else hb  # (b, k2)
        g_v += psi_t(slice(j, j + block), (v2[:, :, None] * a2[j : j + block, None, :]).flatten(1))  # (k1, k2·d)

    # Query pass: U1, c̃, U2, r̃; G_U = Σ_i U1[i] ⊗ U2[i] ⊗ A1[i] and A1ᵀdiag(r̃)U1.
    g_u = h.new_zeros(k1, k2 * d)  # (k1, k2·d)
    a1ru1 = h.new_zeros(d, k1)  # (d, k1)
    den_min = []
    fused_rows = n if use == "fused" and q_factor == "direct" else 0
    if fused_rows:
        phi_w = psi_w * torch.sign(b)[degrees].to(g.dtype)  # (k1,) Φ = M(gain·x)·diag(φ_w)
        w = phi_w[:, None] * torch.cat([psi_sum[:, None], v1h], dim=1)  # (k1, 1 + d)
        chunk = max(1, TILE_BYTES // ((d * d + 2 * d + 1) * itemsize))  # rows of (d² + d) values per call
        for i in range(0, n, chunk):
            qb, a1b, eb = qx[i : i + chunk], a1[i : i + chunk], e[i : i + chunk]  # (b, d) each
            y_b = fused.query_apply(qb[None], w[None], gain, approx.degree)[0]  # (b, 1 + d) Φ·[Ψᵀ1, V1ᵀh]
            den = y_b[:, 0]  # (b,)
            den_min.append(den.amin())
            c = y_b[:, 1:] / den[:, None]  # (b, d) c̃ = U1V1ᵀh
            u2 = c - eb  # (b, d) U2 (direct)
            r = (c * u2).sum(dim=1)  # (b,) r̃ = U1(V1ᵀV2)U2ᵀ with V1ᵀV2 = V1ᵀh
            vals = torch.cat([(u2[:, :, None] * a1b[:, None, :]).flatten(1), a1b * r[:, None]], dim=1)  # (b, d² + d)
            z = fused.key_summary(qb[None], (vals / den[:, None])[None], gain, approx.degree)[0]  # (k1, d² + d)
            z = z * phi_w[:, None]  # Σ_i U1[i] ⊗ vals_i
            g_u += z[:, : d * d]
            a1ru1 += z[:, d * d :].t()
    for i in range(fused_rows, n, block):
        phi = feats.phi(qx[i : i + block])  # (b, k1)
        den = phi @ psi_sum  # (b,) = Σ_j P(logit_ij)
        den_min.append(den.amin())
        u1 = phi / den[:, None]  # (b, k1) rows of f̃ = U1V1ᵀ sum to 1
        eb = e[i : i + block]  # (b, d)
        u2 = torch.cat([u1, eb], dim=1) if q_factor == "paper" else u1 @ v1h - eb  # (b, k2)
        r = ((u1 @ m) * u2).sum(dim=1)  # (b,) r̃ = rows of p̃1 summed
        a1b = a1[i : i + block]  # (b, d)
        g_u += u1.t() @ (u2[:, :, None] * a1b[:, None, :]).flatten(1)  # (k1, k2·d)
        a1ru1 += a1b.t() @ (r[:, None] * u1)  # (d, k1)
    check_normalisers(float(torch.stack(den_min).amin()), kernel="lowrank_gradient",
                      context=f"(Φ(A1X)_i·Ψ(A2)ᵀ1) at degree {approx.degree}, radius {approx.radius:g}, "
                              f"dtype {g.dtype}", hint="use float64 or a larger eps")
    p1_term = g_u.view(k1 * k2, d).t() @ g_v.view(k1 * k2, d)  # (d, d) = A1ᵀp̃1A2
    grad = check_gradient("lowrank_gradient", s * (p1_term - a1ru1 @ v1a2))  # (d, d)
    if not return_info:
        return grad
    return grad, LowRankInfo(degree=approx.degree, radius=approx.radius, relative_error=approx.relative_error,
                             k1=k1, k2=k2, k3=k3, block_size=block, predicted_bytes=need)
