"""Empirical complexity exponents: t(n) ≈ e^a · n^k fitted on log–log axes with statsmodels.

Estimators (``estimator=``):

``"wls-median"`` (default)
    One point per size: the median of ln t over that size's repeats, weighted by the number of
    repeats (a median's variance falls like 1/count). Classical WLS standard errors, Student-t
    with (sizes − 2) degrees of freedom. Justification: repeats at one size share the machine
    state (cache fit, allocator, frequency), so the scatter *between* sizes — which the residuals
    of a per-size fit measure — is the honest uncertainty. Treating every repeat as an
    independent point would shrink the interval by up to √repeats whenever per-size effects
    dominate the run-to-run noise, which on real machines they usually do.
``"ols-hc3"``
    Every repeat is a point; OLS with heteroskedasticity-robust HC3 errors (Student-t with
    points − 2 degrees of freedom). Right when repeats are independent draws and the noise level
    changes with n; too narrow when per-size effects dominate (see above).

Both accept one row per point or one per repeat: repeats are simply rows with the same n.
Only the sizes kept by the asymptotic-region rule (:mod:`ditbench.fit.region`) are fitted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from .models import ModelComparison, compare_laws
from .regime import DEFAULT_THRESHOLDS, RegimeThresholds, classify
from .region import LocalSlope, RegionRule, first_asymptotic_index, local_slopes

ESTIMATORS: tuple[str, ...] = ("wls-median", "ols-hc3")
CONFIDENCE = 0.95  # every interval in this package is a 95% interval


class InsufficientDataError(ValueError):
    """Too few distinct sizes (or points) to fit a line with an interval."""


@dataclass(frozen=True)
class PowerLawFit:
    """ln t ≈ intercept + exponent·ln n over the asymptotic region (t in seconds, n in tokens)."""

    exponent: float  # fitted k
    ci_low: float  # 95% confidence interval of k
    ci_high: float
    intercept: float  # a = ln(seconds) at n = 1
    r2: float  # coefficient of determination of the fitted (log–log) regression
    n_min: float  # smallest and largest size actually fitted
    n_max: float
    points: int  # rows used (repeats, or sizes for wls-median)
    sizes: int  # distinct sizes used
    regime: str  # label from :func:`ditbench.fit.regime.classify`
    local_slopes: tuple[LocalSlope, ...]  # between neighbouring sizes, over *all* sizes given
    dropped_sizes: tuple[float, ...]  # small sizes excluded by the asymptotic-region rule
    aic: ModelComparison  # best of n, n log n, n², free power law on the fitted points
    estimator: str
    _result: Any = field(repr=False, compare=False)  # statsmodels results, for predictions

    @property
    def best_model(self) -> str:
        return self.aic.best

    def predict(self, n: np.ndarray | list[float] | float) -> pd.DataFrame:
        """Fitted time and 95% confidence band of the fitted line at sizes ``n (j,)``.

        Returns a DataFrame with columns ``n, seconds, low, high`` (seconds; the band is the
        interval for the mean log-time, exponentiated — for plotting fitted lines with bands).
        """
        sizes = np.atleast_1d(np.asarray(n, dtype=float))  # (j,)
        if sizes.size == 0 or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
            raise ValueError(f"predict needs finite sizes > 0; got {sizes.tolist()}")
        exog = sm.add_constant(np.log(sizes), has_constant="add")  # (j, 2)
        frame = self._result.get_prediction(exog).summary_frame(alpha=1 - CONFIDENCE)
        return pd.DataFrame({
            "n": sizes,
            "seconds": np.exp(frame["mean"].to_numpy()),
            "low": np.exp(frame["mean_ci_lower"].to_numpy()),
            "high": np.exp(frame["mean_ci_upper"].to_numpy()),
        })


def _validated(n: Any, seconds: Any) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.asarray(n, dtype=float).ravel()  # (p,)
    times = np.asarray(seconds, dtype=float).ravel()  # (p,)
    if sizes.shape != times.shape:
        raise ValueError(f"n has {sizes.size} values but seconds has {times.size}; they must pair up")
    for name, values in (("n", sizes), ("seconds", times)):
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            raise ValueError(
                f"{name} must be finite and > 0 for a log–log fit; {int(bad.sum())} value(s) are not "
                f"(first: {values[bad][0]!r})"
            )
    return sizes, times


def fit_power_law(
    n: Any,
    seconds: Any,
    *,
    estimator: str = "wls-median",
    region: RegionRule = RegionRule(),
    thresholds: RegimeThresholds = DEFAULT_THRESHOLDS,
    min_sizes: int = 3,
) -> PowerLawFit:
    """Fit t = e^a · n^k to timings.

    Args:
        n: ``(p,)`` problem sizes (> 0), one per row; repeats are rows with equal n.
        seconds: ``(p,)`` times in seconds (> 0), paired with ``n``.
        estimator: one of :data:`ESTIMATORS` (see module doc).
        region: asymptotic-region rule; :data:`ditbench.fit.region.FULL_RANGE` fits every size.
        thresholds: regime thresholds.
        min_sizes: fewest distinct sizes accepted (≥ 3: a line and its interval need one spare).

    Raises:
        ValueError: bad input or unknown estimator.
        InsufficientDataError: fewer than ``min_sizes`` distinct sizes.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not one of {ESTIMATORS}")
    if min_sizes < 3:
        raise ValueError(f"min_sizes={min_sizes} must be ≥ 3 (two points leave no residual to estimate error)")
    sizes_all, times = _validated(n, seconds)
    log_t_all = np.log(times)  # (p,)
    sizes, which = np.unique(sizes_all, return_inverse=True)  # (k,) increasing, (p,) size index
    if len(sizes) < min_sizes:
        raise InsufficientDataError(
            f"{len(sizes)} distinct size(s) {sizes.tolist()}; a fit needs at least {min_sizes}"
        )
    log_medians = np.array([np.median(log_t_all[which == i]) for i in range(len(sizes))])  # (k,)
    counts = np.bincount(which).astype(float)  # (k,) repeats per size
    start = first_asymptotic_index(sizes, log_medians, region)

    if estimator == "wls-median":
        log_n = np.log(sizes[start:])  # (k',)
        log_t = log_medians[start:]  # (k',)
        weights = counts[start:]  # (k',)
        result = sm.WLS(log_t, sm.add_constant(log_n), weights=weights).fit(use_t=True)
    else:
        rows = which >= start
        log_n = np.log(sizes_all[rows])  # (p',)
        log_t = log_t_all[rows]  # (p',)
        weights = np.ones_like(log_n)  # (p',)
        result = sm.OLS(log_t, sm.add_constant(log_n)).fit(cov_type="HC3", use_t=True)

    intercept, exponent = (float(v) for v in result.params)
    low, high = (float(v) for v in result.conf_int(alpha=1 - CONFIDENCE)[1])
    if not (np.isfinite(low) and np.isfinite(high)):
        # A perfect fit leaves zero residual variance; statsmodels then returns NaN bounds.
        raise InsufficientDataError(
            f"confidence interval [{low}, {high}] is undefined: the {len(log_n)} fitted points leave "
            "no residual scatter (exact line or duplicated points); add sizes or repeats"
        )
    return PowerLawFit(
        exponent=exponent,
        ci_low=low,
        ci_high=high,
        intercept=intercept,
        r2=float(result.rsquared),
        n_min=float(sizes[start]),
        n_max=float(sizes[-1]),
        points=int(len(log_n)),
        sizes=int(len(sizes) - start),
        regime=classify(low, high, thresholds),
        local_slopes=local_slopes(sizes, log_medians),
        dropped_sizes=tuple(float(s) for s in sizes[:start]),
        aic=compare_laws(log_n, log_t, weights),
        estimator=estimator,
        _result=result,
    )
