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

Optional floor term (``floor_term=True``, off by default). A constant overhead c₀ under the law
gives ln t = a + k·ln n + ln(1 + r(n)) with r = c₀/(e^a n^k) ≈ γ·n^{−k}; the rule above drops
the sizes where r is large, and this option adds the first-order remainder γ·(n/n₀)^{−k_ref} as
a third regressor (k_ref: the upper-half slope; n₀: the smallest size fitted), so the interval
for k also carries the floor's uncertainty. Measured (10 doubling sizes, 5 repeats, 10% noise,
floor equal to a linear law's time at the smallest size): coverage of k = 1 rises from about
half to 95%, at about twice the interval width. Without a floor it only widens the interval,
and on n log n it absorbs part of the log factor's curvature, hence off by default.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from .models import ModelComparison, compare_laws
from .regime import DEFAULT_THRESHOLDS, RegimeThresholds, classify
from .region import LocalSlope, RegionRule, first_asymptotic_index, local_slopes, upper_slope

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
    floor_shape: tuple[float, float] | None  # (k_ref, ln n₀) of the floor regressor, if used
    _result: Any = field(repr=False, compare=False)  # statsmodels results, for predictions

    @property
    def best_model(self) -> str:
        return self.aic.best

    def predict(self, n: np.ndarray | list[float] | float) -> pd.DataFrame:
        """Fitted time and 95% confidence band of the fitted line at sizes ``n (j,)``.

        Returns a DataFrame with columns ``n, seconds, low, high`` (seconds; the band is the
        interval for the mean log-time, exponentiated — for plotting fitted lines with bands).
        With a floor term the curve includes it (it bends toward the floor at small n).
        """
        sizes = np.atleast_1d(np.asarray(n, dtype=float))  # (j,)
        if sizes.size == 0 or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
            raise ValueError(f"predict needs finite sizes > 0; got {sizes.tolist()}")
        exog = _design(np.log(sizes), self.floor_shape)  # (j, 2 or 3)
        frame = self._result.get_prediction(exog).summary_frame(alpha=1 - CONFIDENCE)
        return pd.DataFrame({
            "n": sizes,
            "seconds": np.exp(frame["mean"].to_numpy()),
            "low": np.exp(frame["mean_ci_lower"].to_numpy()),
            "high": np.exp(frame["mean_ci_upper"].to_numpy()),
        })


def _design(log_n: np.ndarray, floor_shape: tuple[float, float] | None) -> np.ndarray:
    """Regressors ``(j, 2)`` [1, ln n], plus the floor column (n/n₀)^{−k_ref} when requested."""
    columns = [np.ones_like(log_n), log_n]
    if floor_shape is not None:
        k_ref, log_n0 = floor_shape
        columns.append(np.exp(-k_ref * (log_n - log_n0)))
    return np.column_stack(columns)


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
    floor_term: bool = False,
) -> PowerLawFit:
    """Fit t = e^a · n^k to timings.

    Args:
        n: ``(p,)`` problem sizes (> 0), one per row; repeats are rows with equal n.
        seconds: ``(p,)`` times in seconds (> 0), paired with ``n``.
        estimator: one of :data:`ESTIMATORS` (see module doc).
        region: asymptotic-region rule; :data:`ditbench.fit.region.FULL_RANGE` fits every size.
        thresholds: regime thresholds.
        min_sizes: fewest distinct sizes accepted (≥ 3: a line and its interval need one spare).
        floor_term: add the first-order overhead-floor regressor (module doc); needs one more
            size than ``min_sizes`` after the region rule, and growing timings.

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
    floor_shape = None
    if floor_term:
        k_ref = upper_slope(sizes, log_medians)
        if k_ref <= 0:
            raise ValueError(f"floor_term needs growing timings; the upper-half slope is {k_ref:.3g}")
        if len(sizes) - start < min_sizes + 1:
            raise InsufficientDataError(
                f"floor_term needs {min_sizes + 1} sizes after the region rule; {len(sizes) - start} remain"
            )
        floor_shape = (k_ref, float(np.log(sizes[start])))

    if estimator == "wls-median":
        log_n = np.log(sizes[start:])  # (k',)
        log_t = log_medians[start:]  # (k',)
        weights = counts[start:]  # (k',)
        result = sm.WLS(log_t, _design(log_n, floor_shape), weights=weights).fit(use_t=True)
    else:
        rows = which >= start
        log_n = np.log(sizes_all[rows])  # (p',)
        log_t = log_t_all[rows]  # (p',)
        weights = np.ones_like(log_n)  # (p',)
        result = sm.OLS(log_t, _design(log_n, floor_shape)).fit(cov_type="HC3", use_t=True)

    intercept, exponent = (float(v) for v in result.params[:2])
    low, high = (float(v) for v in result.conf_int(alpha=1 - CONFIDENCE)[1])
    if not (np.isfinite(low) and np.isfinite(high)):
        # No residual degrees of freedom, or a point with leverage 1 under HC3, leaves statsmodels'
        # interval undefined (NaN); say so instead of passing NaN on. (A perfect fit is not this
        # case: it gives a zero-width interval.)
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
        floor_shape=floor_shape,
        _result=result,
    )
