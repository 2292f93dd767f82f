"""Which growth law fits best: n·logᵖn (p = 0..4), n² or the free exponent model, by AICc.

The named laws have their exponent fixed (only the level is fitted; with a floor, the level and
the floor); the free model is whatever :func:`ditbench.fit.power_law.fit_power_law` chose for the
exponent (a power law, a power law over a floor, or one with a level step). All are fitted to
the same per-size points with the same weights (:mod:`ditbench.fit.laws`), so their AICc values
are comparable. When the exponent model has a floor, every named law is fitted with a floor too:
a floor hides the same way under every law.

Why the polylog laws: n·log⁴n — the cost shape of the polynomial method at B ∝ √ln n — has a
local log–log slope 1 + 4/ln n, about 1.3–1.6 at practical n; a free exponent fitted to it looks
"intermediate" although the law is almost-linear. Only a comparison of shapes can tell the
two apart; :mod:`ditbench.fit.regime` lets a winning n·logᵖn law (with an interval that excludes
sub-linear and quadratic growth) label the fit almost-linear.

Parsimony: the free model has the lowest AICc by chance whenever its likelihood gain over the
true named law exceeds its extra parameters' charge. So ``best`` is the lowest AICc, except
that a named law within :data:`PARSIMONY` of the free model's AICc is preferred to it — the free
model must then win a likelihood-ratio test at about the 5% level (χ²₁ > 4).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .laws import LawFit, fit_floor, fit_named, fit_power

# Law name → ln g(n) as a function of x = ln n (named laws: exponent fixed).
LAWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "n": lambda x: x,
    "n log n": lambda x: x + np.log(x),  # ln(n·ln n); needs n > 1
    "n log^2 n": lambda x: x + 2 * np.log(x),
    "n log^3 n": lambda x: x + 3 * np.log(x),
    "n log^4 n": lambda x: x + 4 * np.log(x),
    "n^2": lambda x: 2.0 * x,
}
POLYLOG = ("n log n", "n log^2 n", "n log^3 n", "n log^4 n")
PARSIMONY = 2.0  # AIC units; see module doc
DECISIVE = 4.0  # AICc units by which a law must beat every other one to be a decisive winner


@dataclass(frozen=True)
class ModelComparison:
    """AICc of each candidate law on the same data; ``best`` wins (module doc)."""

    aic: tuple[tuple[str, float], ...]  # (law, AICc) for every law that could be fitted
    best: str
    skipped: tuple[tuple[str, str], ...] = ()  # (law, reason) for laws that could not be fitted
    free: str = "power"  # name of the free exponent model in ``aic``

    @property
    def decisive(self) -> str | None:
        """The law with the lowest AICc if it beats every other law by ≥ :data:`DECISIVE` units,
        else None. The regime rule's n·logᵖn route uses this, not ``best``: on synthetic n^1.5
        at σ = 0.5 per size the plain lowest AICc is a polylog law 45% of the time, the decisive
        winner 2.5% (tests/test_fit_calibration.py)."""
        ranked = sorted(self.aic, key=lambda item: item[1])
        if len(ranked) == 1 or ranked[1][1] - ranked[0][1] >= DECISIVE:
            return ranked[0][0]
        return None

    def delta(self, law: str) -> float:
        """AICc(law) − AICc(best): 0 for the best law; > 2 is conventionally a clear loss."""
        table = dict(self.aic)
        if law not in table:
            raise ValueError(f"law {law!r} was not fitted; fitted laws: {sorted(table)}")
        return table[law] - table[self.best]


def compare_laws(log_n: np.ndarray, log_t: np.ndarray, weights: np.ndarray, free: LawFit | None = None,
                 *, floor: bool = False) -> ModelComparison:
    """Fit every law in :data:`LAWS` to ``log_t (k,)`` against ``log_n (k,)`` with ``weights (k,)``
    and compare with ``free`` (default: a plain power law fitted here). ``floor``: fit each named
    law over a constant floor."""
    if len(log_n) < 3:
        raise ValueError(f"AIC comparison needs at least 3 points, got {len(log_n)}")
    free = free or fit_power(log_n, log_t, weights)
    free_name = "power" if free.law == "power" else f"power+{free.law}"
    aic: list[tuple[str, float]] = [(free_name, free.aicc)]
    skipped: list[tuple[str, str]] = []
    for law, log_g in LAWS.items():
        if law in POLYLOG and np.any(log_n <= 0):
            skipped.append((law, f"needs every n > 1; smallest n is {math.exp(float(log_n.min())):g}"))
            continue
        fit = fit_floor(log_n, log_t, weights, log_g, law) if floor else fit_named(law, log_g, log_n, log_t, weights)
        if fit is None:
            skipped.append((law, "the floor fit did not converge"))
            continue
        aic.append((law, fit.aicc))
    best, best_aic = min(aic, key=lambda item: item[1])
    named = [item for item in aic if item[0] != free_name]
    if best == free_name and named:
        law, law_aic = min(named, key=lambda item: item[1])
        if law_aic - best_aic < PARSIMONY:
            best = law
    return ModelComparison(aic=tuple(aic), best=best, skipped=tuple(skipped), free=free_name)
