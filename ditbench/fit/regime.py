"""Regime labels for a fitted exponent and its 95% confidence interval.

The thresholds are data (a frozen dataclass), so a report or a test can ask for stricter ones
without touching the rule. Precedence, first match wins:

1. ``inconclusive``   the interval is wider than ``max_ci_width`` — too little evidence to say
                      anything, even if one end happens to sit below 1.25;
2. ``almost-linear``  the upper end is ≤ ``almost_linear_upper`` (the whole interval is near 1);
3. ``quadratic``      the lower end is ≥ ``quadratic_lower`` (the whole interval is near 2);
4. ``intermediate``   a narrow interval strictly between the two.

Width is checked first because a wide interval that ends below 1.25 (say [0.7, 1.24]) is a
poorly determined fit, and calling it almost-linear would overstate what the data show.
Two labels are not about the interval at all: ``insufficient-data`` (fewer sizes than a fit
needs; set by :func:`ditbench.fit.table.fit_table`) lives here so every label has one home.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ALMOST_LINEAR = "almost-linear"
QUADRATIC = "quadratic"
INCONCLUSIVE = "inconclusive"
INTERMEDIATE = "intermediate"
INSUFFICIENT_DATA = "insufficient-data"
REGIMES: tuple[str, ...] = (ALMOST_LINEAR, INTERMEDIATE, QUADRATIC, INCONCLUSIVE, INSUFFICIENT_DATA)


@dataclass(frozen=True)
class RegimeThresholds:
    """Where the regime labels change (exponents of n, dimensionless)."""

    almost_linear_upper: float = 1.25  # CI upper end at or below this: n^{1+o(1)} behaviour
    quadratic_lower: float = 1.75  # CI lower end at or above this: Θ(n²)-like behaviour
    max_ci_width: float = 0.5  # wider CI than this: inconclusive whatever its position

    def __post_init__(self) -> None:
        for name in ("almost_linear_upper", "quadratic_lower", "max_ci_width"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"RegimeThresholds.{name}={value} must be finite")
        if self.max_ci_width <= 0:
            raise ValueError(f"RegimeThresholds.max_ci_width={self.max_ci_width} must be > 0")
        if self.almost_linear_upper >= self.quadratic_lower:
            raise ValueError(
                f"RegimeThresholds.almost_linear_upper={self.almost_linear_upper} must be below "
                f"quadratic_lower={self.quadratic_lower}"
            )


DEFAULT_THRESHOLDS = RegimeThresholds()


def classify(ci_low: float, ci_high: float, thresholds: RegimeThresholds = DEFAULT_THRESHOLDS) -> str:
    """Label a 95% confidence interval ``[ci_low, ci_high]`` of an exponent (see module doc)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        raise ValueError(f"confidence interval [{ci_low}, {ci_high}] must be finite")
    if ci_low > ci_high:
        raise ValueError(f"confidence interval has ci_low={ci_low} > ci_high={ci_high}")
    if ci_high - ci_low > thresholds.max_ci_width:
        return INCONCLUSIVE
    if ci_high <= thresholds.almost_linear_upper:
        return ALMOST_LINEAR
    if ci_low >= thresholds.quadratic_lower:
        return QUADRATIC
    return INTERMEDIATE
