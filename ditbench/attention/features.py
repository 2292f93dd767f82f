"""Symmetric-monomial feature maps of the polynomial method (DESIGN §3.1, step 2).

P(s·⟨q, k⟩) = Σ_i b_i (s⟨q, k⟩/R)^i and ⟨q, k⟩^i = Σ_{|α|=i} (i choose α) q^α k^α, so with
u = q·√(s/R), w = k·√(s/R):

    P(s·⟨q, k⟩) = Σ_α b_{|α|}·mult(α)·u^α w^α = ⟨φ(q), ψ(k)⟩,

one feature per multiset α of at most g coordinates: rank r = C(g + d, d), not the d^g of a
tensor power. φ carries sign(b_i)·√(|b_i|·mult(α)), ψ carries √(|b_i|·mult(α)), so neither side
grows like mult(α) alone (high-degree float32 features neither overflow nor underflow).

Monomials are built degree by degree in a *transposed* layout ``(..., r, tokens)``: the degree-i
monomials are ordered by their largest coordinate index j, so the degree-i block with largest
index j is (the first C(i−1+j, i−1) degree-(i−1) monomials — those with largest index ≤ j) times
coordinate j. Each block is one broadcast multiply of a contiguous row slice; there is no Python
loop over monomials, only over (degree, coordinate) pairs, and no gather.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from .._checks import check_eps, check_positive_int, resolve_scale
from ..expapprox import MAX_DEGREE, ExpApprox, check_method, exp_approx, minimal_approx


##################################################################################
#                          Monomial enumeration tables                           #
##################################################################################

@dataclass(frozen=True)
class MonomialTable:
    """Layout of the C(g + d, d) monomials of degree ≤ g in d variables.

    d, degree: variables and maximal degree. Rows: degree 0 (the constant 1), then degree 1
    (x_0 … x_{d−1}), then each higher degree, every degree ordered by largest coordinate index.
    levels: for each degree i ≥ 2, d steps ``(dst, src, count, coord)``: rows
        ``dst:dst+count`` = rows ``src:src+count`` (a prefix of degree i − 1) × x_coord.
    degrees: (r,) int64, the degree |α| of each monomial.
    multinomials: (r,) float64, (|α| choose α) of each monomial.
    """

    d: int
    degree: int
    levels: tuple[tuple[tuple[int, int, int, int], ...], ...]
    degrees: np.ndarray = field(repr=False)
    multinomials: np.ndarray = field(repr=False)

    @property
    def rank(self) -> int:
        return int(self.degrees.shape[0])


@lru_cache(maxsize=64)
def monomial_table(d: int, degree: int) -> MonomialTable:
    """Enumerate non-decreasing index tuples degree by degree (cached per (d, degree))."""
    fact = np.array([float(math.factorial(i)) for i in range(degree + 1)])  # (g + 1,)
    alphas = [np.zeros((1, d), dtype=np.int64)]  # degree 0: the empty monomial
    if degree >= 1:
        alphas.append(np.eye(d, dtype=np.int64))  # degree 1: x_0 … x_{d−1}, ordered by index
    levels: list[tuple[tuple[int, int, int, int], ...]] = []
    prev_start, dst = 1, 1 + d  # first row of degree 1, first free row
    for i in range(2, degree + 1):
        level_start, steps, blocks = dst, [], []
        for j in range(d):
            count = math.comb(i - 1 + j, i - 1)  # degree-(i−1) monomials with largest index ≤ j
            steps.append((dst, prev_start, count, j))
            block = alphas[-1][:count].copy()  # (count, d)
            block[:, j] += 1
            blocks.append(block)
            dst += count
        levels.append(tuple(steps))
        alphas.append(np.concatenate(blocks))  # (C(i + d − 1, i), d)
        prev_start = level_start
    alpha = np.concatenate(alphas)  # (r, d)
    degrees = alpha.sum(axis=1)  # (r,)
    multinomials = fact[degrees] / np.prod(fact[alpha], axis=1)  # (r,)
    return MonomialTable(d=d, degree=degree, levels=tuple(levels), degrees=degrees, multinomials=multinomials)


def raw_monomials(xt: Tensor, table: MonomialTable) -> Tensor:
    """All monomials x^α, |α| ≤ g, in the transposed layout.

    Args:
        xt: ``(..., d, b)`` coordinates, tokens last.
    Returns:
        ``(..., r, b)`` with row order as in ``table`` (row 0 is the constant 1).

    Without autograd the rows are written in place into one buffer; with autograd the same
    products, in the same order, are concatenated (bitwise-identical values).
    """
    *lead, d, b = xt.shape
    if d != table.d:
        raise ValueError(f"coordinates have d={d}, table was built for d={table.d}")
    if torch.is_grad_enabled() and xt.requires_grad:
        return _raw_monomials_autograd(xt, table)
    out = xt.new_empty(*lead, table.rank, b)  # (..., r, b)
    out[..., 0, :] = 1.0
    if table.degree >= 1:
        out[..., 1 : 1 + d, :] = xt
    for steps in table.levels:
        for dst, src, count, coord in steps:
            torch.mul(out[..., src : src + count, :], xt[..., coord : coord + 1, :],
                      out=out[..., dst : dst + count, :])  # (..., count, b)
    return out


def _raw_monomials_autograd(xt: Tensor, table: MonomialTable) -> Tensor:
    rows = [torch.ones_like(xt[..., :1, :])]  # degree 0: (..., 1, b)
    if table.degree >= 1:
        rows.append(xt)  # degree 1: (..., d, b)
    for steps in table.levels:
        prev = rows[-1]  # (..., C(i + d − 2, i − 1), b), degree i − 1
        rows.append(torch.cat([prev[..., :count, :] * xt[..., coord : coord + 1, :]
                               for _, _, count, coord in steps], dim=-2))  # (..., C(i + d − 1, i), b)
    return torch.cat(rows, dim=-2)  # (..., r, b)


@lru_cache(maxsize=64)
def _device_table(d: int, degree: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(degrees int64 (r,), multinomials float64 (r,)) on ``device``, cached."""
    table = monomial_table(d, degree)
    return (torch.as_tensor(table.degrees, device=device),
            torch.as_tensor(table.multinomials, dtype=torch.float64, device=device))


def monomial_weights(d: int, degree_coeffs: Tensor) -> Tensor:
    """(r,) float64 weights c_{|α|}·mult(α) on ``degree_coeffs.device``.

    degree_coeffs: ``(g + 1,)`` float64 per-degree coefficients c_i.
    """
    degrees, mult = _device_table(d, degree_coeffs.shape[0] - 1, degree_coeffs.device)
    return degree_coeffs[degrees] * mult  # (r,)


##################################################################################
#                            Public feature maps                                 #
##################################################################################

@dataclass(frozen=True)
class PolynomialFeatures:
    """Feature maps with ⟨φ(q), ψ(k)⟩ = P(scale·⟨q, k⟩) ≈ exp(scale·⟨q, k⟩), relative error
    ≤ ``relative_error`` whenever |scale·⟨q, k⟩| ≤ ``radius``.

    Build with :meth:`create`. d: feature dim; scale: logit scale; radius: R (logit units);
    approx: the verified exp approximation (degree, coefficients, realised relative error).
    """

    d: int
    scale: float
    radius: float
    approx: ExpApprox

    @classmethod
    def create(
        cls, d: int, radius: float, *, scale: float | None = None, eps: float = 1e-3, degree: int | None = None,
        construction: str = "minimax",
    ) -> PolynomialFeatures:
        """Features for d-dim inputs whose logits lie in [−radius, radius].

        ``degree=None`` picks the minimal degree meeting ``eps`` (ValueError when none does);
        an explicit degree is used as given (its realised error is ``.relative_error``).
        ``construction``: ``"minimax"`` (Remez) or ``"chebyshev"`` (ditbench.expapprox.METHODS).
        The minimal construction is built for a radius ≤ 0.55 % above ``radius`` (``.radius``).
        """
        d = check_positive_int("d", d)
        s = resolve_scale(scale, d)
        eps = check_eps(eps)
        if degree is None:
            approx = minimal_approx(float(radius), eps, method=construction)
        else:
            approx = exp_approx(float(radius), check_positive_int("degree", degree, minimum=0, maximum=MAX_DEGREE,
                                                                  why="ditbench.expapprox.MAX_DEGREE"),
                                check_method(construction))
        return cls(d=d, scale=s, radius=approx.radius, approx=approx)

    @property
    def degree(self) -> int:
        return self.approx.degree

    @property
    def rank(self) -> int:
        """Number of features r = C(g + d, d)."""
        return math.comb(self.degree + self.d, self.d)

    @property
    def coefficients(self) -> np.ndarray:
        """(g + 1,) float64 a_i with P(x) = Σ_i a_i x^i, x = scale·⟨q, k⟩ (logit units)."""
        return self.approx.monomial_coefficients()

    @property
    def relative_error(self) -> float:
        """Realised max |P(x)/eˣ − 1| on [−radius, radius] (dense float64 grid)."""
        return self.approx.relative_error

    def phi(self, x: Tensor) -> Tensor:
        """Query features: ``(..., n, d)`` → ``(..., n, r)`` (carries the coefficients' signs)."""
        return self._features(x, signed=True)

    def psi(self, y: Tensor) -> Tensor:
        """Key features: ``(..., m, d)`` → ``(..., m, r)``."""
        return self._features(y, signed=False)

    def _features(self, x: Tensor, *, signed: bool) -> Tensor:
        if x.shape[-1] != self.d:
            raise ValueError(f"input has feature dim {x.shape[-1]}, features were built for d={self.d}")
        if not x.is_floating_point():
            raise ValueError(f"input dtype {x.dtype} must be floating point")
        b = torch.tensor(self.approx.coefficients, dtype=torch.float64, device=x.device)  # (g + 1,)
        degrees, mult = _device_table(self.d, self.degree, x.device)  # (r,), (r,)
        w = (b.abs()[degrees] * mult).sqrt()  # (r,) √(|b_i|·mult(α))
        if signed:
            w = w * torch.sign(b)[degrees]  # the sign rides on the query side only
        gain = math.sqrt(self.scale / self.radius) if self.radius > 0 else math.sqrt(self.scale)
        raw = raw_monomials((x * gain).transpose(-1, -2), monomial_table(self.d, self.degree))  # (..., r, n)
        return raw.transpose(-1, -2) * w.to(x.dtype)  # (..., n, r)
