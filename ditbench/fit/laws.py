"""Growth laws fitted to per-size log-times: y = ln t against x = ln n, with weights.

Every law is a :class:`Law` (name, number of parameters, a fitting function); the fit returns a
:class:`LawFit` with parameters, their covariance, the weighted residual sum of squares and the
small-sample AIC (AICc). All laws are fitted to the *same* points with the *same* weights, so
their AICc values are comparable (Gaussian likelihood with the error scale profiled out:
AIC = N·ln(WSSR/N) + 2p; AICc adds 2p(p+1)/(N − p − 1), which matters at the 5–12 sizes a sweep
has).

Shapes of law (t in seconds, n > 0):

``power``        t = e^a·n^k                         ln t = a + k·x                (a, k)
``floor``        t = e^α + e^a·n^k                    ln t = logaddexp(α, a + k·x)   (a, k, α)
``step``         t = e^a·n^k·e^{δ·[n ≥ n_s]}          ln t = a + k·x + δ·[x ≥ x_s]   (a, k, δ; n_s chosen)
named ``g``      t = e^a·g(n)                         ln t = a + ln g(n)             (a)
named + floor    t = e^α + e^a·g(n)                                                  (a, α)

The floor and named-with-floor laws are nonlinear and fitted by ``scipy.optimize.least_squares``
(Levenberg–Marquardt, analytic Jacobian, a few starting floors); the others are weighted least
squares in closed form. Covariances are s²·(JᵀWJ)⁻¹ with s² = WSSR/(N − p) (the error scale is
estimated from the residuals, so weights need only be right up to a common factor). The step
law chooses its break between neighbouring sizes by least squares and counts the break as one
more parameter in its AICc.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares


@dataclass(frozen=True, eq=False)  # compared by identity (it holds arrays)
class LawFit:
    """One law fitted to N points. ``params`` always starts with (a, k) where the law has them."""

    law: str
    params: np.ndarray  # (p,) fitted parameters, law-specific order (see module doc)
    cov: np.ndarray  # (p, p) s²·(JᵀWJ)⁻¹; NaN where undefined (no residual degrees of freedom)
    wssr: float  # Σ w·(y − ŷ)²
    nobs: int  # N points
    nparams: int  # parameters charged in the AICc (the step's break counts as one)
    predict: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (θ, x) → (ŷ, J)
    step_index: int | None = None  # first point on the high side of the step (step law only)

    @property
    def df_resid(self) -> int:
        return self.nobs - len(self.params) - (self.step_index is not None)

    @property
    def aicc(self) -> float:
        n, p = self.nobs, self.nparams
        if self.wssr <= 0 or n - p - 1 <= 0:
            return math.inf if n - p - 1 <= 0 else -math.inf
        return n * math.log(self.wssr / n) + 2 * p + 2 * p * (p + 1) / (n - p - 1)

    def mean_and_se(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fitted ln t at ``x (j,)`` and its standard error (delta method)."""
        y, jac = self.predict(self.params, x)  # (j,), (j, p)
        var = np.einsum("ij,jk,ik->i", jac, self.cov, jac)  # (j,)
        return y, np.sqrt(np.maximum(var, 0.0))


def _covariance(jac: np.ndarray, w: np.ndarray, wssr: float, df: int) -> np.ndarray:
    """s²·(JᵀWJ)⁻¹ for ``jac (N, p)``; NaN when df ≤ 0 or JᵀWJ is singular."""
    p = jac.shape[1]
    if df <= 0:
        return np.full((p, p), np.nan)
    info = jac.T @ (w[:, None] * jac)  # (p, p)
    try:
        inv = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full((p, p), np.nan)
    return wssr / df * inv


def _linear(law: str, design: Callable[[np.ndarray], np.ndarray], offset: Callable[[np.ndarray], np.ndarray],
            x: np.ndarray, y: np.ndarray, w: np.ndarray, extra: int = 0, step_index: int | None = None) -> LawFit:
    """y ≈ design(x)·θ + offset(x), weighted least squares in closed form."""
    X = design(x)  # (N, p)
    sw = np.sqrt(w)  # (N,)
    theta, *_ = np.linalg.lstsq(X * sw[:, None], (y - offset(x)) * sw, rcond=None)
    resid = y - offset(x) - X @ theta  # (N,)
    wssr = float(np.sum(w * resid**2))

    def predict(params: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = design(xs)
        return D @ params + offset(xs), D

    df = len(x) - X.shape[1] - extra
    return LawFit(law, theta, _covariance(X, w, wssr, df), wssr, len(x), X.shape[1] + extra, predict, step_index)


def fit_power(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> LawFit:
    return _linear("power", lambda s: np.column_stack([np.ones_like(s), s]), np.zeros_like, x, y, w)


def fit_steps(x: np.ndarray, y: np.ndarray, w: np.ndarray, min_side: int = 2) -> list[LawFit]:
    """Power law with one level step at every break between sorted neighbours that leaves
    ``min_side`` points on each side (empty when there is none)."""
    fits = []
    for j in range(min_side, len(x) - min_side + 1):
        edge = 0.5 * (x[j - 1] + x[j])

        def design(s: np.ndarray, edge: float = edge) -> np.ndarray:
            return np.column_stack([np.ones_like(s), s, (s >= edge).astype(float)])

        fits.append(_linear("step", design, np.zeros_like, x, y, w, extra=1, step_index=j))
    return fits


def fit_step(x: np.ndarray, y: np.ndarray, w: np.ndarray, min_side: int = 2) -> LawFit | None:
    """Power law with one level step; the break (between sorted neighbours) minimising WSSR.
    None when there are too few points for ``min_side`` on each side plus a residual."""
    return min(fit_steps(x, y, w, min_side), key=lambda fit: fit.wssr, default=None)


def fit_curved(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> LawFit:
    """ln t = a + k·x + c·(x − x̄)²: a smooth bend (polylog factors, gradual cache effects), the
    alternative a level step must beat before it is reported."""
    centre = float(np.mean(x))
    return _linear("curved", lambda s: np.column_stack([np.ones_like(s), s, (s - centre) ** 2]), np.zeros_like,
                   x, y, w)


def fit_named(law: str, log_g: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
              w: np.ndarray) -> LawFit:
    return _linear(law, lambda s: np.ones((len(s), 1)), log_g, x, y, w)


def _floor_predict(log_g: Callable[[np.ndarray], np.ndarray] | None) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """ŷ and Jacobian of logaddexp(α, a + k·x) (log_g None) or logaddexp(α, a + ln g(x))."""

    def predict(params: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if log_g is None:
            a, k, alpha = params
            law = a + k * x  # (N,)
        else:
            a, alpha = params
            law = a + log_g(x)
        y = np.logaddexp(alpha, law)  # (N,)
        share = np.exp(law - y)  # (N,) fraction of t that is the law (1 − floor share)
        cols = [share, share * x, 1.0 - share] if log_g is None else [share, 1.0 - share]
        return y, np.column_stack(cols)

    return predict


def fit_floor(x: np.ndarray, y: np.ndarray, w: np.ndarray,
              log_g: Callable[[np.ndarray], np.ndarray] | None = None, law: str = "floor") -> LawFit | None:
    """t = e^α + (power law or named law g); None when no start converges to a finite fit."""
    predict = _floor_predict(log_g)
    sw = np.sqrt(w)
    t = np.exp(y)
    order = np.argsort(x)
    best = None
    shares = (0.8, 0.2) if log_g is None else (0.5,)
    for share in shares:  # starting floor: this share of the smallest time
        floor = share * t[order[0]]
        rest = np.log(np.maximum(t - floor, 1e-3 * t))  # (N,) ln of the part above the floor
        if log_g is None:
            k0, a0 = np.polyfit(x, rest, 1, w=sw)
            start = np.array([a0, k0, math.log(floor)])
        else:
            start = np.array([float(np.average(rest - log_g(x), weights=w)), math.log(floor)])
        try:
            sol = least_squares(lambda th: (predict(th, x)[0] - y) * sw, start,
                                jac=lambda th: predict(th, x)[1] * sw[:, None], method="lm")
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.all(np.isfinite(sol.x)) and (best is None or sol.cost < best.cost):
            best = sol
    if best is None:
        return None
    yhat, jac = predict(best.x, x)
    wssr = float(np.sum(w * (y - yhat) ** 2))
    p = len(best.x)
    return LawFit(law, best.x, _covariance(jac, w, wssr, len(x) - p), wssr, len(x), p, predict)
