"""Regime labels for a fitted exponent: a cautious label, never a confidently wrong one.

The rule (DESIGN "Verdicts"), on the 95% interval [lo, hi] of the exponent k and the law the AIC
comparison preferred (:mod:`ditbench.fit.models`). Precedence, first match wins:

1. ``not-asymptotic``  hi < 0.9: the sizes saw fixed overhead, not the asymptotic region
                       (sub-linear growth). Never called almost-linear; the reason suggests
                       larger n.
2. ``almost-linear``   [lo, hi] ⊂ [0.9, 1.25]; *or* an n·logᵖn law (p = 0..4) won the AICc
                       comparison decisively (by ≥ 4 units over every other law, the free
                       exponent model included: :attr:`ModelComparison.decisive`) and the
                       interval excludes both the sub-linear region and the quadratic one
                       (lo ≥ 0.9, hi < 1.75). The second route is what lets
                       n·log⁴n (local slope 1 + 4/ln n ≈ 1.3–1.6 at practical n) be
                       recognised; the interval condition keeps a noisy fit from using it.
3. ``quadratic``       lo ≥ 1.75, with no upper cap; an interval wholly above 2.25 says
                       "super-quadratic: memory or cache effects" in its reason.
4. ``intermediate``    [lo, hi] strictly inside (1.25, 1.75).
5. ``inconclusive``    anything else (an interval straddling 0.9, 1.25 or 1.75).

Rules 2–4 can only overlap where an n·logᵖn law wins inside (1.25, 1.75): rule 2 wins there,
because the model comparison has then told a polylog factor from a larger power. Every label
comes with a one-line reason (:class:`Verdict`), written to fits.csv as ``regime_reason``.
``insufficient-data`` (no fit possible; set by :func:`ditbench.fit.table.fit_table`) lives here
so every label has one home.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

NOT_ASYMPTOTIC = "not-asymptotic"
ALMOST_LINEAR = "almost-linear"
QUADRATIC = "quadratic"
INCONCLUSIVE = "inconclusive"
INTERMEDIATE = "intermediate"
INSUFFICIENT_DATA = "insufficient-data"
REGIMES: tuple[str, ...] = (NOT_ASYMPTOTIC, ALMOST_LINEAR, INTERMEDIATE, QUADRATIC, INCONCLUSIVE, INSUFFICIENT_DATA)

# Laws of the AIC comparison that are almost-linear: n·logᵖn, p = 0..4 (ditbench.fit.models.LAWS).
ALMOST_LINEAR_LAWS: frozenset[str] = frozenset({"n", "n log n", "n log^2 n", "n log^3 n", "n log^4 n"})


@dataclass(frozen=True)
class RegimeThresholds:
    """Where the regime labels change (exponents of n, dimensionless)."""

    almost_linear_lower: float = 0.9  # below this the sizes saw overhead (sub-linear / not asymptotic)
    almost_linear_upper: float = 1.25  # interval inside [lower, upper]: n^{1+o(1)} behaviour
    quadratic_lower: float = 1.75  # interval lower end at or above this: Θ(n²)-like behaviour
    super_quadratic_lower: float = 2.25  # interval wholly above this: the reason names memory/cache effects

    def __post_init__(self) -> None:
        names = ("almost_linear_lower", "almost_linear_upper", "quadratic_lower", "super_quadratic_lower")
        for name in names:
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"RegimeThresholds.{name}={value} must be finite")
        values = [getattr(self, name) for name in names]
        for (a, va), (b, vb) in zip(zip(names, values), zip(names[1:], values[1:])):
            if not va < vb:
                raise ValueError(f"RegimeThresholds.{a}={va} must be below {b}={vb}")


DEFAULT_THRESHOLDS = RegimeThresholds()


@dataclass(frozen=True)
class Verdict:
    """A regime label and the one-line reason for it."""

    label: str  # one of REGIMES
    reason: str


def _ci(lo: float, hi: float) -> str:
    return f"[{lo:.3g}, {hi:.3g}]"


def verdict(ci_low: float, ci_high: float, best_law: str | None = None,
            thresholds: RegimeThresholds = DEFAULT_THRESHOLDS, *, n_max: float | None = None) -> Verdict:
    """Label the 95% interval ``[ci_low, ci_high]`` of an exponent (module doc for the rule).

    Args:
        best_law: the AICc comparison's decisive winner (:attr:`ModelComparison.decisive`),
            or None when there was none.
        n_max: the largest size fitted, quoted in the not-asymptotic advice.
    """
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        raise ValueError(f"confidence interval [{ci_low}, {ci_high}] must be finite")
    if ci_low > ci_high:
        raise ValueError(f"confidence interval has ci_low={ci_low} > ci_high={ci_high}")
    t, ci = thresholds, _ci(ci_low, ci_high)
    if ci_high < t.almost_linear_lower:
        beyond = f" beyond n = {n_max:.4g}" if n_max is not None else ""
        return Verdict(NOT_ASYMPTOTIC, f"interval {ci} lies below {t.almost_linear_lower:g}: the sizes saw fixed "
                                       f"overhead, not the asymptotic region (sub-linear); measure larger n{beyond}")
    if t.almost_linear_lower <= ci_low and ci_high <= t.almost_linear_upper:
        return Verdict(ALMOST_LINEAR, f"interval {ci} lies inside [{t.almost_linear_lower:g}, "
                                      f"{t.almost_linear_upper:g}]")
    if best_law in ALMOST_LINEAR_LAWS and ci_low >= t.almost_linear_lower and ci_high < t.quadratic_lower:
        return Verdict(ALMOST_LINEAR, f"AICc prefers {best_law} decisively over a free power law, and the "
                                      f"interval {ci} excludes sub-linear and quadratic growth")
    if ci_low >= t.quadratic_lower:
        if ci_low > t.super_quadratic_lower:
            return Verdict(QUADRATIC, f"interval {ci} lies above {t.super_quadratic_lower:g}: super-quadratic, "
                                      "memory or cache effects on top of quadratic work")
        return Verdict(QUADRATIC, f"interval {ci} lies at or above {t.quadratic_lower:g}")
    if t.almost_linear_upper < ci_low and ci_high < t.quadratic_lower:
        return Verdict(INTERMEDIATE, f"interval {ci} lies strictly inside ({t.almost_linear_upper:g}, "
                                     f"{t.quadratic_lower:g})")
    edges = [e for e in (t.almost_linear_lower, t.almost_linear_upper, t.quadratic_lower) if ci_low <= e <= ci_high]
    return Verdict(INCONCLUSIVE, f"interval {ci} reaches across {', '.join(f'{e:g}' for e in edges)}: "
                                 "more sizes or less noise needed")


def classify(ci_low: float, ci_high: float, thresholds: RegimeThresholds = DEFAULT_THRESHOLDS,
             best_law: str | None = None) -> str:
    """Just the label of :func:`verdict`."""
    return verdict(ci_low, ci_high, best_law, thresholds).label
