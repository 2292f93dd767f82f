"""Empirical complexity exponents, floor- and step-aware: t(n) ≈ e^a·n^k with a 95% interval for k.

``fit_power_law(n, seconds)`` accepts any positive x in place of n (it is also used for error
rates against n, D or d0, where k is negative) and one row per point, per repeat or per block.

What it does (default ``estimator="wls-median"``, ``model="auto"``):

1. **Summarise per size** (:mod:`ditbench.fit.variance`): ȳ_i = mean over passes of the per-pass
   median ln t, with a two-level (pass × block) variance model giving each size the weight
   1/(τ² + v_i). Noise between sizes (τ²) dominates on real machines, so the interval uses
   Student-t with (sizes − parameters) degrees of freedom and the scale from the residuals.
2. **Fit three exponent models** to the same points (:mod:`ditbench.fit.laws`): a plain power
   law; the same over a constant floor, t = c₀ + e^a·n^k (fixed per-call overhead: dispatch,
   allocation, thread start-up, which makes local slopes *rise* toward k); and a power law with
   one level step at a break between neighbouring sizes (a cache or memory-hierarchy
   transition, which would otherwise be folded into k).
3. **Choose by AICc** (small-sample AIC): the floor or step model replaces the plain law only
   when it lowers AICc — a floor also needs rising local slopes (the fitted floor is at least
   :data:`MIN_FLOOR_SHARE` of the smallest time) and a step a level change of at least
   :data:`MIN_STEP` in ln t. The interval of k is the chosen model's (delta method through the
   floor's nonlinearity). ``fit.model`` names the choice, ``fit.floor_s`` / ``fit.step`` report
   what was found instead of hiding it in k.
4. **Compare shapes** (:mod:`ditbench.fit.models`): n·logᵖn (p = 0..4) and n² against the chosen
   model, with a floor when the chosen model has one; ``best_model`` is the winner.
5. **Label** (:mod:`ditbench.fit.regime`): the interval and the winning law give ``regime`` and
   a one-line ``reason``.

``model="power" | "floor" | "step"`` forces one exponent model; ``region=RegionRule()`` first drops
small sizes whose local slope is below 0.9 of the upper-half slope (the older rule, kept as an
option: :mod:`ditbench.fit.region`). ``estimator="ols-hc3"`` fits a plain power law to every
row with OLS and heteroskedasticity-robust HC3 errors — right only when rows are independent
draws (no between-size effects).

Calibration (tests/test_fit_calibration.py): 95% intervals cover the true exponent in ≥ 90% of
≥ 200 trials for power laws, an overhead floor, n log n, n log⁴ n and a ×2 step under log-normal
noise shared within a size (σ = 0.05–0.5); the numbers are in docs/fit.md.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from .choices import ESTIMATORS, MODELS
from .laws import LawFit, fit_curved, fit_floor, fit_power, fit_steps
from .models import ModelComparison, compare_laws
from .regime import DEFAULT_THRESHOLDS, RegimeThresholds, verdict
from .region import LocalSlope, RegionRule, first_asymptotic_index, local_slopes
from .variance import SizeSummary, summarize, two_level_weights

CONFIDENCE = 0.95  # every interval in this package is a 95% interval
MIN_FLOOR_SHARE = 0.05  # a floor below 5% of the smallest time is noise, not overhead
MIN_STEP = math.log(1.25)  # a level change below ×1.25 is not reported as a step
MIN_SIZES_EXTRA = 8  # "auto" considers a floor or a step only with this many sizes (df ≥ 4 left)
PLAUSIBLE = 4.0  # AICc units: models this close to the chosen one widen the interval (model uncertainty)


class InsufficientDataError(ValueError):
    """Too few distinct sizes (or points) to fit a line with an interval."""


@dataclass(frozen=True)
class Step:
    """A single level step in t: between ``n_below`` and ``n_above`` time jumps by ``factor``."""

    n_below: float
    n_above: float
    factor: float  # e^δ
    factor_low: float  # 95% interval of the factor
    factor_high: float


@dataclass(frozen=True)
class PowerLawFit:
    """ln t ≈ intercept + exponent·ln n (+ floor or step), over the sizes fitted (t in seconds)."""

    exponent: float  # fitted k
    ci_low: float  # 95% confidence interval of k
    ci_high: float
    intercept: float  # a = ln(seconds) at n = 1 of the power-law part
    r2: float  # share of the per-size variance of ln t the chosen model explains
    n_min: float  # smallest and largest size actually fitted
    n_max: float
    points: int  # points fitted (sizes for wls-median, rows for ols-hc3)
    sizes: int  # distinct sizes used
    regime: str  # label from :func:`ditbench.fit.regime.verdict`
    reason: str  # its one-line reason
    local_slopes: tuple[LocalSlope, ...]  # between neighbouring sizes, over *all* sizes given
    dropped_sizes: tuple[float, ...]  # small sizes excluded by an explicit ``region`` rule
    aic: ModelComparison  # shapes compared on the fitted points
    estimator: str
    model: str  # exponent model used: "power", "floor" or "step"
    floor_s: float | None  # fitted constant floor in seconds (model "floor")
    step: Step | None  # the level step found (model "step")
    tau2: float  # between-size variance of ln t in the weights (two-level model)
    drift_gamma: float | None  # γ̂ of the drift covariate (variance.Drift), None when not used
    drift_se: float | None  # its standard error
    df_resid: int  # residual degrees of freedom of the interval
    ci_models: tuple[str, ...]  # exponent models whose intervals the reported one envelops
    _law: LawFit = field(repr=False, compare=False)

    @property
    def best_model(self) -> str:
        return self.aic.best

    def line_cov(self) -> np.ndarray:
        """(2, 2) covariance of (intercept, exponent)."""
        return np.asarray(self._law.cov, dtype=float)[:2, :2]

    def predict(self, n: np.ndarray | list[float] | float) -> pd.DataFrame:
        """Fitted time and 95% confidence band of the fitted curve at sizes ``n (j,)``.

        Returns a DataFrame with columns ``n, seconds, low, high`` (seconds; the band is the
        interval for the mean log-time, exponentiated). The curve includes a floor or step.
        """
        sizes = np.atleast_1d(np.asarray(n, dtype=float))  # (j,)
        if sizes.size == 0 or not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
            raise ValueError(f"predict needs finite sizes > 0; got {sizes.tolist()}")
        mean, se = self._law.mean_and_se(np.log(sizes))
        q = float(stats.t.ppf(0.5 + CONFIDENCE / 2, max(self.df_resid, 1)))
        return pd.DataFrame({"n": sizes, "seconds": np.exp(mean), "low": np.exp(mean - q * se),
                             "high": np.exp(mean + q * se)})


def _validated_reference(reference: Any, size: int) -> np.ndarray | None:
    """ln of the drift reference per row ``(p,)``, or None when absent (any missing value: not used)."""
    if reference is None:
        return None
    values = np.asarray(reference, dtype=float).ravel()  # (p,)
    if values.size != size:
        raise ValueError(f"drift_ref has {values.size} values but n has {size}; they must pair up")
    if not np.all(np.isfinite(values)):
        return None  # rows measured without the reference (older runs, CUDA): no adjustment
    if np.any(values <= 0):
        raise ValueError(f"drift_ref must be > 0 seconds; first bad value {values[values <= 0][0]!r}")
    return np.log(values)


def _validated(n: Any, seconds: Any, passes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
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
    if passes is None:
        return sizes, times, None
    index = np.asarray(passes).ravel()
    if index.shape != sizes.shape:
        raise ValueError(f"passes has {index.size} values but n has {sizes.size}; they must pair up")
    return sizes, times, index


def _exponent_models(x: np.ndarray, y: np.ndarray, w: np.ndarray, model: str) -> tuple[LawFit, list[LawFit]]:
    """The chosen exponent model and every plausible one (module doc, step 3): a model is
    plausible when its AICc is within :data:`PLAUSIBLE` of the chosen one's."""
    power = fit_power(x, y, w)
    fitted, chosen = [power], [power]
    steps: list[LawFit] | None = None
    if model in ("auto", "floor") and len(x) >= (5 if model == "floor" else MIN_SIZES_EXTRA):
        floor = fit_floor(x, y, w)
        if floor is not None and (model == "floor" or _floor_is_real(floor, x, y)):
            fitted.append(floor)
            chosen.append(floor)
    if model in ("auto", "step") and len(x) >= (6 if model == "step" else MIN_SIZES_EXTRA):
        steps = fit_steps(x, y, w)  # every break (reused by unexcluded_steps below)
        step = min(steps, key=lambda fit: fit.wssr, default=None)
        if step is not None and (model == "step" or abs(step.params[2]) >= MIN_STEP):
            fitted.append(step)
            if model == "step" or _step_is_real(step, power, fit_curved(x, y, w)):
                chosen.append(step)
    # A model whose exponent has no finite interval (a floor so dominant that k is unidentified)
    # cannot be chosen; the plain law always stays a candidate.
    fitted = [c for c in fitted if c is power or math.isfinite(_interval(c)[0])]
    chosen = [c for c in chosen if any(c is f for f in fitted)]
    if model != "auto":
        forced = [c for c in fitted if c.law == model]
        if not forced:
            raise InsufficientDataError(f"model={model!r} needs more sizes than the {len(x)} given "
                                        f"(floor: 5, step: 6), or did not converge")
        return forced[0], forced
    best = min(chosen, key=lambda c: (c.aicc, c.nparams))
    plausible = [c for c in fitted if c is best or c.aicc <= best.aicc + PLAUSIBLE]
    if model == "auto" and len(x) >= MIN_SIZES_EXTRA:
        plausible += [c for c in unexcluded_steps(x, y, w, best, steps) if not any(c is p for p in plausible)]
    return best, plausible


def unexcluded_steps(x: np.ndarray, y: np.ndarray, w: np.ndarray, best: LawFit,
                     steps: list[LawFit] | None = None) -> list[LawFit]:
    """Step models the data cannot exclude, whose exponent intervals join the envelope.

    A level step of at least :data:`MIN_STEP` that the data cannot rule out makes the slope
    uncertain by as much as the step model says, wherever the step may sit; trusting the chosen
    (no-step) fit then under-covers (a ×2 step at σ = 0.5 per size: 0.75). So, for every break:
    keep its step fit when (1) the break lies in the 95% confidence set for the break location —
    its WSSR is not worse than the best of {chosen model, steps at every break} by more than an
    F(1, df) test at 5% allows (inverting the likelihood-ratio test, the usual change-point
    confidence set) — and (2) its δ interval reaches |δ| ≥ MIN_STEP (a step that large is not
    excluded). At low noise (2) fails for laws without a step and nothing widens."""
    steps = [s for s in (fit_steps(x, y, w) if steps is None else steps)
             if s.df_resid > 0 and math.isfinite(_interval(s)[0])]
    if not steps:
        return []
    ref = min([best, *steps], key=lambda c: c.wssr)
    if ref.df_resid <= 0 or ref.wssr <= 0:
        return []
    limit = _f_quantile(ref.df_resid) * ref.wssr / ref.df_resid
    kept = []
    for s in steps:
        delta, se = float(s.params[2]), math.sqrt(max(float(s.cov[2, 2]), 0.0))
        q = _t_quantile(s.df_resid)
        if s.wssr - ref.wssr <= limit and abs(delta) + q * se >= MIN_STEP:
            kept.append(s)
    return kept


def _floor_is_real(floor: LawFit, x: np.ndarray, y: np.ndarray) -> bool:
    """A floor is a candidate when it is at least MIN_FLOOR_SHARE of the smallest time and the
    law above it carries most of the largest time (otherwise the sizes never saw the law, and
    the plain fit's flat slope — "not asymptotic" — is the honest answer)."""
    a, k, alpha = (float(v) for v in floor.params)
    top = int(np.argmax(x))
    law_share_at_top = 1.0 / (1.0 + math.exp(alpha - (a + k * x[top])))
    return math.exp(alpha - float(y.min())) >= MIN_FLOOR_SHARE and law_share_at_top > 0.5


@functools.cache
def _t_quantile(df: int) -> float:
    """The two-sided 95% Student-t quantile (cached: scipy's ppf costs ~0.1 ms, and a fit asks
    for it once per model and break)."""
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


@functools.cache
def _f_quantile(df: int) -> float:
    """The 95% quantile of F(1, df) (cached like :func:`_t_quantile`)."""
    return float(stats.f.ppf(CONFIDENCE, 1, df))


def _interval(law: LawFit) -> tuple[float, float, float]:
    """(low, high, t quantile) of the exponent's 95% interval under ``law``; NaN when undefined."""
    df = law.df_resid
    var = float(law.cov[1, 1])
    if df <= 0 or not (math.isfinite(var) and var >= 0):
        return math.nan, math.nan, math.nan
    q = _t_quantile(df)
    k = float(law.params[1])
    return k - q * math.sqrt(var), k + q * math.sqrt(var), q


def _step_is_real(step: LawFit, power: LawFit, curved: LawFit) -> bool:
    """A level step is reported only when it is large (≥ MIN_STEP in ln t), beats the plain law
    in an F test at 5% after a Bonferroni correction for the breaks tried (the break is chosen
    as the best of N − 3, so an uncorrected test would find steps in pure noise), and has
    a lower AICc than a smooth bend (so polylog curvature is not read as a step)."""
    if abs(step.params[2]) < MIN_STEP or step.df_resid <= 0 or step.wssr <= 0:
        return False
    breaks = step.nobs - 3
    f_stat = (power.wssr - step.wssr) / (step.wssr / step.df_resid)
    p_value = float(stats.f.sf(f_stat, 1, step.df_resid)) * breaks
    return p_value < 0.05 and step.aicc < curved.aicc - PLAUSIBLE


def _ols_hc3(log_n: np.ndarray, log_t: np.ndarray) -> tuple[LawFit, float]:
    exog = sm.add_constant(log_n, has_constant="add")  # (p, 2)
    result = sm.OLS(log_t, exog).fit(cov_type="HC3", use_t=True)
    power = fit_power(log_n, log_t, np.ones_like(log_n))
    law = LawFit("power", np.asarray(result.params), np.asarray(result.cov_params()), power.wssr, len(log_n), 2,
                 power.predict)
    return law, float(result.rsquared)


def fit_power_law(
    n: Any,
    seconds: Any,
    *,
    passes: Any = None,
    drift_ref: Any = None,
    estimator: str = "wls-median",
    model: str = "auto",
    region: RegionRule | None = None,
    thresholds: RegimeThresholds = DEFAULT_THRESHOLDS,
    min_sizes: int = 3,
) -> PowerLawFit:
    """Fit t = e^a·n^k (with floor or step where the data show one) to timings (module doc).

    Args:
        n: ``(p,)`` sizes (> 0; any positive x), one per row; repeats are rows with equal n.
        seconds: ``(p,)`` times (> 0; any positive y), paired with ``n``.
        passes: optional ``(p,)`` pass index of each row (the two-level variance model).
        drift_ref: optional ``(p,)`` seconds of the drift reference timed around each row's pass
            (``drift_ref_s``); with passes, ln t is adjusted by γ̂·(ln ref − mean) within sizes
            (:mod:`ditbench.fit.variance`). Ignored when any value is missing.
        estimator: one of :data:`ESTIMATORS`.
        model: one of :data:`MODELS`; "auto" chooses by AICc.
        region: optional asymptotic-region rule applied before fitting (None: every size).
        thresholds: regime thresholds.
        min_sizes: fewest distinct sizes accepted (≥ 3: a line and its interval need one spare).

    Raises:
        ValueError: bad input, unknown estimator or model.
        InsufficientDataError: fewer than ``min_sizes`` distinct sizes, or no interval exists.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not one of {ESTIMATORS}")
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not one of {MODELS}")
    if min_sizes < 3:
        raise ValueError(f"min_sizes={min_sizes} must be ≥ 3 (two points leave no residual to estimate error)")
    sizes_all, times, pass_index = _validated(n, seconds, passes)
    log_t_all = np.log(times)  # (p,)
    log_ref = _validated_reference(drift_ref, sizes_all.size)
    summary = summarize(sizes_all, log_t_all, pass_index, log_ref if estimator != "ols-hc3" else None)
    if len(summary.sizes) < min_sizes:
        raise InsufficientDataError(
            f"{len(summary.sizes)} distinct size(s) {summary.sizes.tolist()}; a fit needs at least {min_sizes}")
    slopes = local_slopes(summary.sizes, summary.log_t)
    start = 0 if region is None else first_asymptotic_index(summary.sizes, summary.log_t, region)
    x, y = np.log(summary.sizes[start:]), summary.log_t[start:]  # (N,), (N,)

    if estimator == "ols-hc3":
        rows = sizes_all >= summary.sizes[start]
        law, r2 = _ols_hc3(np.log(sizes_all[rows]), log_t_all[rows])
        weights, tau2, points = np.ones_like(x), 0.0, int(rows.sum())
        comparison = compare_laws(x, y, weights)
    else:
        first = fit_power(x, y, np.ones_like(x))
        first_resid = y - first.predict(first.params, x)[0]
        weights, tau2 = two_level_weights(summary.tail(start), first_resid, 2)
        law, plausible = _exponent_models(x, y, weights, model)
        points = len(x)
        ybar = np.average(y, weights=weights)
        total = float(np.sum(weights * (y - ybar) ** 2))
        r2 = 1.0 - law.wssr / total if total > 0 else 1.0
        comparison = compare_laws(x, y, weights, law, floor=law.law == "floor")

    intercept, exponent = float(law.params[0]), float(law.params[1])
    if estimator == "ols-hc3":
        df = points - 2
        se = math.sqrt(law.cov[1, 1])
        q = _t_quantile(df) if df > 0 else math.nan
        low, high = exponent - q * se, exponent + q * se
        ci_models: tuple[str, ...] = ("power",)
    else:
        df = law.df_resid
        low, high, q = _interval(law)
        ci_models = tuple(dict.fromkeys(m.law for m in plausible))
        for other in plausible:  # the envelope over plausible models: model uncertainty widens it
            lo_m, hi_m, _ = _interval(other)
            low, high = min(low, lo_m), max(high, hi_m)
        low, high = _with_drift_error(summary.tail(start), x, weights, exponent, low, high, q)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InsufficientDataError(
            f"confidence interval is undefined: the {len(x)} fitted sizes leave no residual scatter for "
            f"model {law.law!r} (exact line or duplicated points); add sizes or repeats")
    label = verdict(low, high, comparison.decisive, thresholds, n_max=float(summary.sizes[-1]))
    return PowerLawFit(
        exponent=exponent, ci_low=low, ci_high=high, intercept=intercept, r2=float(r2),
        n_min=float(summary.sizes[start]), n_max=float(summary.sizes[-1]), points=points, sizes=len(x),
        regime=label.label, reason=label.reason, local_slopes=slopes,
        dropped_sizes=tuple(float(s) for s in summary.sizes[:start]), aic=comparison, estimator=estimator,
        model=law.law, floor_s=math.exp(law.params[2]) if law.law == "floor" else None,
        step=_step(law, summary.sizes[start:], q), tau2=tau2,
        drift_gamma=None if summary.drift is None else summary.drift.gamma,
        drift_se=None if summary.drift is None else summary.drift.se, df_resid=df, ci_models=ci_models, _law=law,
    )


def _with_drift_error(summary: SizeSummary, x: np.ndarray, w: np.ndarray, k: float, low: float, high: float,
                      q: float) -> tuple[float, float]:
    """The interval widened by γ̂'s own error: it moves size i by (γ̂ − γ)·offset_i, which shifts the
    fitted slope by (γ̂ − γ)·b, b the weighted slope of the offsets on ln n; added in quadrature to
    each half of the interval (variance.py's module doc)."""
    drift = summary.drift
    if drift is None or not math.isfinite(q):
        return low, high
    xc = x - np.average(x, weights=w)
    b = float(np.sum(w * xc * drift.offset) / np.sum(w * xc**2))
    extra = q * abs(b) * drift.se
    return k - math.hypot(k - low, extra), k + math.hypot(high - k, extra)


def _step(law: LawFit, sizes: np.ndarray, q: float) -> Step | None:
    if law.law != "step" or law.step_index is None:
        return None
    delta, se = float(law.params[2]), math.sqrt(max(float(law.cov[2, 2]), 0.0))
    j = law.step_index
    return Step(float(sizes[j - 1]), float(sizes[j]), math.exp(delta), math.exp(delta - q * se),
                math.exp(delta + q * se))
