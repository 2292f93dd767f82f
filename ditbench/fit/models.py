"""Which growth law fits best: linear n, n log n, n² or a free power law, compared by AIC.

Every candidate is a straight line in log space, ln t = a + g(ln n), with g fixed for the three
named laws (an offset, only the intercept is fitted) and g = k·ln n free for the power law. All
four are fitted with statsmodels to the same response (ln t) and the same weights, so their
Gaussian log-likelihoods — and hence AIC = 2·(parameters) − 2·loglik — are comparable. AIC
charges the free power law one extra parameter, so on data that really follow n or n² the named
law usually wins; a free exponent of, say, 1.3 wins because no named law fits it.

Parsimony: the free law has the lowest AIC by chance whenever its likelihood-ratio gain over the
true named law exceeds 2 (χ²₁ > 2: 16% of the time). So ``best`` is the lowest AIC, except that
a named law within :data:`PARSIMONY` of the free law's AIC is preferred to it — equivalent to
keeping the named law unless a likelihood-ratio test rejects it at about the 5% level (χ²₁ > 4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import statsmodels.api as sm

# Law name → offset g(ln n) for the fixed-exponent laws; None marks the free power law.
LAWS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "n": lambda log_n: log_n,
    "n log n": lambda log_n: log_n + np.log(log_n),  # ln(n·ln n); needs n > 1
    "n^2": lambda log_n: 2.0 * log_n,
    "power": None,
}
PARSIMONY = 2.0  # AIC units; see module doc


@dataclass(frozen=True)
class ModelComparison:
    """AIC of each candidate law on the same data; ``best`` has the smallest AIC."""

    aic: tuple[tuple[str, float], ...]  # (law, AIC) for every law that could be fitted
    best: str
    skipped: tuple[tuple[str, str], ...] = ()  # (law, reason) for laws that could not be fitted

    def delta(self, law: str) -> float:
        """AIC(law) − AIC(best): 0 for the best law; > 2 is conventionally a clear loss."""
        table = dict(self.aic)
        if law not in table:
            raise ValueError(f"law {law!r} was not fitted; fitted laws: {sorted(table)}")
        return table[law] - table[self.best]


def compare_laws(log_n: np.ndarray, log_t: np.ndarray, weights: np.ndarray) -> ModelComparison:
    """Fit every law in :data:`LAWS` to ``log_t (k,)`` against ``log_n (k,)`` with ``weights (k,)``."""
    if len(log_n) < 3:
        raise ValueError(f"AIC comparison needs at least 3 points, got {len(log_n)}")
    aic: list[tuple[str, float]] = []
    skipped: list[tuple[str, str]] = []
    for law, offset in LAWS.items():
        if offset is None:
            exog = sm.add_constant(log_n, has_constant="add")  # (k, 2)
            result = sm.WLS(log_t, exog, weights=weights).fit()
        else:
            if law == "n log n" and np.any(log_n <= 0):
                skipped.append((law, f"needs every n > 1; smallest n is {math.exp(log_n.min()):g}"))
                continue
            exog = np.ones((len(log_n), 1))  # (k, 1): intercept only, slope fixed by the offset
            result = sm.WLS(log_t - offset(log_n), exog, weights=weights).fit()
        aic.append((law, float(result.aic)))
    best, best_aic = min(aic, key=lambda item: item[1])
    named = [item for item in aic if item[0] != "power"]
    if best == "power" and named:
        law, law_aic = min(named, key=lambda item: item[1])
        if law_aic - best_aic < PARSIMONY:
            best = law
    return ModelComparison(aic=tuple(aic), best=best, skipped=tuple(skipped))
