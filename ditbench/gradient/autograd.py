"""The second almost-linear route (DESIGN §3.2): autograd through the streamed polynomial forward.

L̃(X) = ½‖polynomial_attention(A1X, A2, A3Y) − E‖²_F is differentiated by torch. Its cost is a
small multiple of the forward, O(n·r·d) with r = C(g + d, d) — no k1² blow-up — but autograd keeps
every block's features for the backward, so memory is O(n·r) rather than O(block·r).

What it computes is the exact gradient of the approximated loss: with f̃ = P(S)/rowsum,
∂L̃/∂S_ij = f̃_ij·(P′/P)(S_ij)·(q̃_ij − r̃_i), i.e. the low-rank chain's p̃ times P′/P ≈ 1, so its
error bound adds the relative error of P′ ≈ exp (ditbench.gradient.bounds).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import theory
from .._checks import check_eps, check_positive_int
from ..attention.polynomial import choose_approx, polynomial_attention
from ..errors import KernelRefusal
from .problem import check_gradient, check_gradient_inputs, check_memory_budget, check_poly_dtype, check_products


@dataclass(frozen=True)
class PolynomialGradientInfo:
    """degree, radius (logit units) and realised relative error of P ≈ exp; rank r = C(g + d, d);
    predicted_bytes from theory.polynomial_autograd_gradient_cost."""

    degree: int
    radius: float
    relative_error: float
    rank: int
    predicted_bytes: float


def polynomial_autograd_gradient(
    a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, *,
    scale: float | None = None, eps: float = 1e-3, degree: int | None = None,
    block_size: int | None = None, memory_budget: float | None = None, return_info: bool = False,
) -> Tensor | tuple[Tensor, PolynomialGradientInfo]:
    """dL/dX ≈ autograd of ½‖polynomial_attention(A1X, A2, A3Y) − E‖²_F.

    Args:
        a1, a2, a3, e: ``(n, d)``. x, y: ``(d, d)``. float32 or float64.
        scale: s; ``None`` means 1/√d. eps, degree: as :func:`ditbench.gradient.lowrank_gradient`
            (the same radius and degree are passed to the forward kernel, so both routes use one P).
        block_size: forward tile rows (``None``: the kernel's default).
        memory_budget: cap on predicted bytes *including* what autograd keeps (default 2 GiB).
        return_info: also return a :class:`PolynomialGradientInfo`.

    Returns:
        ``(d, d)`` (and the info).
    """
    g = check_gradient_inputs(a1, a2, a3, x, y, e, scale)
    check_poly_dtype("polynomial_autograd_gradient", g.dtype)
    eps = check_eps(eps)
    budget = check_memory_budget(memory_budget)
    leaf = x.detach().requires_grad_(True)  # (d, d)
    h = a3 @ y  # (n, d)
    with torch.enable_grad():
        qx = a1 @ leaf  # (n, d)
        check_products("polynomial_autograd_gradient", qx.detach(), a2, h, g.scale)
        radius = theory.logit_radius(qx.detach(), a2, g.scale)
        approx = choose_approx(radius, eps, degree)
        block = None if block_size is None else check_positive_int("block_size", block_size)
        # The kernel's own tiles are ≤ 2 MiB; 1024 rows is an upper estimate.
        need = theory.polynomial_autograd_gradient_cost(
            g.n, g.d, approx.degree, itemsize=g.dtype.itemsize, block=block or 1024).bytes
        if need > budget:
            raise KernelRefusal(
                f"polynomial_autograd_gradient at degree {approx.degree} "
                f"(rank {theory.feature_rank(g.d, approx.degree)}, "
                f"eps={eps:g}, radius={radius:g}) needs about {need / 2**20:.1f} MiB (autograd keeps O(n·r) features) "
                f"> memory_budget={budget / 2**20:.1f} MiB; use a larger eps, a smaller degree or lowrank_gradient"
            )
        out = polynomial_attention(qx, a2, h, scale=g.scale, degree=approx.degree, radius=approx.radius,
                                   block_size=block, memory_budget=budget)  # (n, d)
        loss = 0.5 * (out - e).square().sum()
        # At degree 0 (a radius near 0) P is a constant, the approximated loss does not depend on X
        # and its exact gradient is 0: autograd then has no path to the leaf.
        (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True) if loss.requires_grad else (None,)  # (d, d)
    grad = check_gradient("polynomial_autograd_gradient", torch.zeros_like(x) if grad is None else grad)
    if not return_info:
        return grad
    return grad, PolynomialGradientInfo(degree=approx.degree, radius=approx.radius,
                                        relative_error=approx.relative_error,
                                        rank=theory.feature_rank(g.d, approx.degree), predicted_bytes=need)
