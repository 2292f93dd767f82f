"""Crossover size n*: where an approximate kernel's fitted line drops below the exact one's.

With ln t_approx = a₁ + k₁·x and ln t_exact = a₂ + k₂·x (x = ln n), the gap
δ(x) = (a₁ − a₂) + (k₁ − k₂)·x is a straight line, and n* = exp(x*) where δ(x*) = 0.

Interval (Fieller): the two fits are independent, so Var δ(x) = V₁(x) + V₂(x) with each Vᵢ(x)
the variance of fit i's line at x (statsmodels' parameter covariance). The 95% interval for x*
is the set of x where the 95% band of δ still contains 0, i.e. δ(x)² ≤ q²·Var δ(x) with q the
Student-t quantile at the smaller of the two fits' residual degrees of freedom. It is a bounded
interval exactly when the slope difference is itself significant (Δk² > q²·Var Δk); otherwise
the data do not pin n* down and ``low``/``high`` are ``None`` with ``interval="unbounded"``.

Statuses (the approximate kernel should grow more slowly; "range" is the union of the two fits'
fitted sizes):
``crosses``              Δk < 0 and n* inside the range.
``crosses-below-range``  Δk < 0 and n* below the range: approximate faster throughout.
``crosses-beyond-range`` Δk < 0 and n* above the range: an extrapolated prediction.
``never-faster``         Δk ≥ 0 and approximate slower at the top of the range: no n* ahead.
``faster-but-steeper``   Δk ≥ 0 but approximate faster at the top of the range: it wins there
                         now and loses as n grows (``n_star`` is where it stops winning, if Δk > 0).
No status ever carries a NaN: absent values are ``None``.
A fit with a floor or a step contributes its power-law part (the law above the floor, the level
below the step): the crossover of the asymptotic laws.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .power_law import CONFIDENCE, PowerLawFit

STATUSES: tuple[str, ...] = (
    "crosses", "crosses-below-range", "crosses-beyond-range", "never-faster", "faster-but-steeper",
)


@dataclass(frozen=True)
class Crossover:
    """Where the approximate kernel becomes faster than exact (sizes in tokens)."""

    status: str  # one of STATUSES
    n_star: float | None  # where the fitted lines cross; None when they never do
    low: float | None  # 95% interval for n_star; None when unbounded
    high: float | None
    interval: str  # "bounded" or "unbounded"
    slope_gap: float  # k_approx − k_exact (negative: the approximate kernel grows more slowly)
    n_range: tuple[float, float]  # sizes covered by the two fits together


def _exp(x: float) -> float:
    """e^x, as +inf past float range (a crossover beyond 1e308 tokens is "never" in practice)."""
    return math.exp(x) if x < 709.0 else math.inf


def _line_cov(fit: PowerLawFit) -> np.ndarray:
    # (2, 2) block for (intercept, exponent); a floor's or step's row/column is not part of the line.
    return fit.line_cov()


def crossover(approx: PowerLawFit, exact: PowerLawFit) -> Crossover:
    """Crossover of ``approx`` below ``exact`` (see module doc for statuses and interval)."""
    da = approx.intercept - exact.intercept
    dk = approx.exponent - exact.exponent
    cov = _line_cov(approx) + _line_cov(exact)  # (2, 2) independent fits: variances add
    df = min(approx.df_resid, exact.df_resid)
    q = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))
    lo_n, hi_n = min(approx.n_min, exact.n_min), max(approx.n_max, exact.n_max)
    x_lo, x_hi = math.log(lo_n), math.log(hi_n)

    x_star = -da / dk if dk != 0 else None
    if dk < 0:
        assert x_star is not None
        status = "crosses" if x_lo <= x_star <= x_hi else (
            "crosses-below-range" if x_star < x_lo else "crosses-beyond-range")
    else:
        status = "faster-but-steeper" if da + dk * x_hi < 0 else "never-faster"
        if status == "never-faster":
            x_star = None

    # Fieller: (da + dk·x)² − q²(v_aa + 2 v_ak x + v_kk x²) ≤ 0 → A x² + B x + C ≤ 0.
    a2 = dk * dk - q * q * cov[1, 1]
    b2 = 2 * (da * dk - q * q * cov[0, 1])
    c2 = da * da - q * q * cov[0, 0]
    low = high = None
    interval = "unbounded"
    if x_star is not None and a2 > 0:
        disc = b2 * b2 - 4 * a2 * c2
        if disc >= 0:  # a2 > 0 and x_star satisfies the inequality, so disc ≥ 0 holds in practice
            root = math.sqrt(disc)
            low, high = _exp((-b2 - root) / (2 * a2)), _exp((-b2 + root) / (2 * a2))
            interval = "bounded"
    return Crossover(
        status=status,
        n_star=None if x_star is None else _exp(x_star),
        low=low, high=high, interval=interval, slope_gap=dk, n_range=(lo_n, hi_n),
    )
