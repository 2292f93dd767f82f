"""Per-size summaries and weights: a two-level (pass × block) variance model.

A measured size carries timings at two levels: *blocks* (each the mean of a few calls, taken
back to back) within *passes* (the size visited once, in a shuffled order among every other
point of the run), and sizes themselves differ by effects that no repetition at one size can
average away (cache fit, allocator, which pass hit a busy machine). Let y_ij be the median
ln(seconds per call) over the blocks of pass j at size i, and ȳ_i the mean over that size's P_i
passes. The model is

    ȳ_i = f(ln n_i) + u_i + ē_i,     u_i ~ (0, τ²) between sizes,   ē_i ~ (0, v_i) within,

with v_i = s_i²/P_i estimated from the spread of the pass values y_ij (which already contains
the block noise), and τ² from the fit's residuals by the method of moments:
τ² = max(0, Σ w⁰ r²/(N − p) − mean v) with a first, unweighted fit (DerSimonian–Laird in
spirit). The fit then weights size i by 1/(τ² + v_i) and estimates the overall scale from its
residuals, so its interval carries both levels. Without pass indices the rows of a size are one
pass (ȳ_i is their median; repeats taken back to back share the size's state) and every size
weighs the same; sizes with a single pass get the median v of the others (or, when none has
two, every size weighs the same).

**Drift covariate** (``log_ref``: ln of the drift reference timed around each pass of a size,
:mod:`ditbench.measure.drift`). The machine's speed drifts over seconds and the kernel and the
reference share part of it, so with r_ij the reference's ln t at (size i, pass j)

    y_ij = f(ln n_i) + u_i + γ·(r_ij − r̄) + e_ij,

γ estimated *within sizes* — pooled over the group, γ̂ = Σ(y_ij − ȳ_i)(r_ij − r̄_i) / Σ(r_ij − r̄_i)²,
from the pass-to-pass variation, which f and u_i cannot touch — and every cell adjusted to the
group's mean reference r̄ before the per-size summary: y*_ij = y_ij − γ̂·(r_ij − r̄). A size whose
passes met a slow machine (r̄_i > r̄) is moved back by γ̂·(r̄_i − r̄). γ̂ takes one degree of freedom
from the within-size variance (v_i is scaled by df/(df − 1)); its own error moves every size by
(γ̂ − γ)·(r̄_i − r̄), a shared error that the fit adds to the exponent's interval
(:func:`ditbench.fit.power_law.fit_power_law`, ``drift_se``·|slope of r̄_i − r̄ on ln n|). A useless
reference gives γ̂ ≈ 0 and costs that one degree of freedom; nothing is adjusted without
passes (no within-size variation to estimate γ from) or when the reference does not vary.

Why not weight by the number of repeats: when u_i dominates (it does on shared machines:
"Noise *between sizes* dominates", issue 11), more blocks at one size do not make it more
informative, and count weights would let one long-measured size steer the line.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SizeSummary:
    """One value per distinct size, sorted by size."""

    sizes: np.ndarray  # (N,) distinct sizes, increasing
    log_t: np.ndarray  # (N,) ȳ_i: mean over passes of the per-pass median ln t
    within_var: np.ndarray  # (N,) v_i (variance of ȳ_i from within-size spread); NaN if unknown
    passes: np.ndarray  # (N,) P_i
    rows: np.ndarray  # (N,) rows (blocks) at each size
    drift: Drift | None = None  # the drift-covariate adjustment applied to log_t (None: none)

    def tail(self, start: int) -> SizeSummary:
        """The sizes from index ``start`` on."""
        drift = None if self.drift is None else Drift(self.drift.gamma, self.drift.se, self.drift.df,
                                                      self.drift.offset[start:])
        return SizeSummary(self.sizes[start:], self.log_t[start:], self.within_var[start:], self.passes[start:],
                           self.rows[start:], drift)


@dataclass(frozen=True)
class Drift:
    """The within-size regression of ln t on the centred ln(reference) (module doc)."""

    gamma: float  # γ̂: ln t per unit ln(reference), pooled within sizes
    se: float  # its standard error
    df: int  # residual degrees of freedom of that regression
    offset: np.ndarray  # (N,) r̄_i − r̄: each size's mean reference against the group's (what γ̂ removed)


MIN_DRIFT_DF = 3  # fewest residual df of the within-size regression before γ̂ is used


def summarize(sizes: np.ndarray, log_t: np.ndarray, passes: np.ndarray | None = None,
              log_ref: np.ndarray | None = None) -> SizeSummary:
    """Per-size summary of rows ``sizes (p,)``, ``log_t (p,)`` with optional ``passes (p,)`` and
    drift reference ``log_ref (p,)`` (ln seconds of the reference timed around each row's pass)."""
    distinct, which = np.unique(sizes, return_inverse=True)  # (N,), (p,)
    if passes is None:
        passes = np.zeros(len(sizes), dtype=int)  # one pass per size: the median of its rows
    _, cell = np.unique(np.column_stack([which, np.unique(passes, return_inverse=True)[1]]), axis=0,
                        return_inverse=True)  # (p,) index of the (size, pass) cell
    cell = cell.ravel()
    cells = cell.max() + 1
    cell_size = np.zeros(cells, dtype=int)
    cell_size[cell] = which
    order = np.lexsort((log_t, cell))  # rows sorted by cell, then value
    counts = np.bincount(cell, minlength=cells)  # (C,)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lo = log_t[order][starts + (counts - 1) // 2]
    hi = log_t[order][starts + counts // 2]
    cell_median = 0.5 * (lo + hi)  # (C,) median ln t of each (size, pass) cell
    passes_per_size = np.bincount(cell_size, minlength=len(distinct)).astype(float)  # (N,)
    drift = None
    if log_ref is not None:
        cell_ref = np.bincount(cell, weights=log_ref, minlength=cells) / counts  # (C,) mean ln ref of a cell
        drift = _drift_fit(cell_median, cell_ref, cell_size, passes_per_size)
        if drift is not None:
            cell_median = cell_median - drift.gamma * (cell_ref - cell_ref.mean())
    mean = np.bincount(cell_size, weights=cell_median, minlength=len(distinct)) / passes_per_size
    sq = np.bincount(cell_size, weights=(cell_median - mean[cell_size]) ** 2, minlength=len(distinct))
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(passes_per_size > 1, sq / (passes_per_size - 1) / passes_per_size, np.nan)
    if drift is not None:
        within = within * (drift.df + 1) / drift.df  # γ̂ took one of the within-size degrees of freedom
    rows = np.bincount(which, minlength=len(distinct))
    return SizeSummary(distinct, mean, within, passes_per_size.astype(int), rows, drift)


def _drift_fit(y: np.ndarray, r: np.ndarray, size: np.ndarray, passes: np.ndarray) -> Drift | None:
    """γ̂ from cells ``y (C,)``, ``r (C,)`` of sizes ``size (C,)`` (``passes (N,)`` cells per size),
    both centred within their size; None when the data cannot estimate it."""
    if not np.all(np.isfinite(r)):
        return None
    n_sizes = len(passes)
    y_c = y - (np.bincount(size, weights=y, minlength=n_sizes) / passes)[size]  # (C,)
    r_c = r - (np.bincount(size, weights=r, minlength=n_sizes) / passes)[size]  # (C,)
    sxx = float(np.sum(r_c**2))
    df = len(y) - n_sizes - 1
    if df < MIN_DRIFT_DF or not sxx > 1e-12 * max(1.0, float(np.sum(r**2))):
        return None
    gamma = float(np.sum(r_c * y_c) / sxx)
    s2 = float(np.sum((y_c - gamma * r_c) ** 2)) / df
    offset = np.bincount(size, weights=r, minlength=n_sizes) / passes - float(r.mean())  # (N,)
    return Drift(gamma, float(np.sqrt(s2 / sxx)), df, offset)


def filled_within_var(summary: SizeSummary) -> np.ndarray:
    """v_i with unknown entries replaced by the median of the known ones (0 when none is known)."""
    v = summary.within_var
    known = v[np.isfinite(v)]
    return np.where(np.isfinite(v), v, np.median(known) if known.size else 0.0)


def two_level_weights(summary: SizeSummary, resid: np.ndarray, nparams: int) -> tuple[np.ndarray, float]:
    """Weights 1/(τ² + v_i) (normalised to mean 1) and τ², from the residuals ``resid (N,)`` of a
    first, equally weighted fit with ``nparams`` parameters (module doc)."""
    v = filled_within_var(summary)
    df = len(resid) - nparams
    total = float(np.sum(resid**2) / df) if df > 0 else 0.0
    tau2 = max(0.0, total - float(v.mean()))
    denom = tau2 + v
    if not np.all(denom > 0):
        return np.ones_like(v), tau2
    w = 1.0 / denom
    return w / w.mean(), tau2
