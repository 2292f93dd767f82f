"""The report's one door into :mod:`ditbench.fit`: fitted lines with 95% bands per plotted series,
crossovers n* against the exact baseline, and the fit table when a run has no ``fits.csv``.

Nothing is fitted here; every number comes from :mod:`ditbench.fit`. This module only decides
which rows go into which call and packages the answers for the figures and tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import fit
from .data import Run
from .select import UNIFORM, by_series, exact_baseline, exact_kernels, series_columns

BAND_POINTS = 40  # sizes at which each fitted line and its band are drawn (geometric grid)
# The report's own grouping when a run has no fits.csv: the columns its figures split series by.
FIT_GROUPS = ("experiment", "kernel", "op", "params", "bound_spec", "d", "dtype", "device", "machine")


@dataclass(frozen=True)
class FittedLine:
    """A power-law fit of one plotted series, ready to draw.

    band: columns ``n`` (tokens), ``seconds``, ``low``, ``high`` — the fitted line and its 95%
    confidence band over the fitted size range.
    """

    label: str
    exponent: float
    ci_low: float
    ci_high: float
    regime: str
    band: pd.DataFrame


@dataclass(frozen=True)
class KernelCrossover:
    """Where the series ``label`` (an approximate kernel) crosses below ``baseline`` (exact);
    ``result`` is :func:`ditbench.fit.crossover`'s answer (status, n*, 95% interval)."""

    label: str
    baseline: str
    result: fit.Crossover

    @property
    def drawable(self) -> bool:
        """True when n* lies inside the measured range (status ``crosses``)."""
        return self.result.status == "crosses" and self.result.n_star is not None


def _fit(rows: pd.DataFrame) -> fit.PowerLawFit | None:
    try:
        return fit.fit_power_law(rows["n"].to_numpy(float), rows["median_s"].to_numpy(float))
    except fit.InsufficientDataError:
        return None  # fewer sizes than a line with an interval needs: points only


def fitted_lines(rows: pd.DataFrame) -> list[FittedLine]:
    """Fit every series of ``rows`` (ok rows of one op, split as the figures split them) that
    has enough sizes; series with too few sizes simply get no line."""
    lines = []
    for label, g in by_series(rows):
        f = _fit(g)
        if f is None:
            continue
        grid = np.geomspace(f.n_min, f.n_max, BAND_POINTS)  # (BAND_POINTS,)
        lines.append(FittedLine(label=label, exponent=f.exponent, ci_low=f.ci_low, ci_high=f.ci_high,
                                regime=f.regime, band=f.predict(grid)))
    return lines


def crossovers(rows: pd.DataFrame) -> list[KernelCrossover]:
    """n* of every approximate series of ``rows`` (forward ok rows of one experiment) against the
    exact baseline measured under the same settings (same regime, d, dtype, device when the
    baseline has them)."""
    baseline = exact_baseline(rows)
    if baseline is None:
        return []
    cols = series_columns(rows)
    base_rows = rows[rows["kernel"] == baseline]
    exact = exact_kernels(rows)
    out = []
    for label, g in by_series(rows):
        kernel = str(g["kernel"].iloc[0])
        if kernel in exact or kernel == UNIFORM:
            continue
        same = base_rows
        for c in cols:
            if c != "kernel":
                match = same[same[c] == g[c].iloc[0]]
                same = match if len(match) else same  # the baseline may not sweep this setting
        approx_fit, exact_fit = _fit(g), _fit(same)
        if approx_fit is not None and exact_fit is not None:
            out.append(KernelCrossover(label=label, baseline=baseline, result=fit.crossover(approx_fit, exact_fit)))
    return out


def run_fits(run: Run) -> pd.DataFrame | None:
    """The run's fit table: its ``fits.csv`` (what `ditbench run` concluded) when that fitted at
    least one group; otherwise :func:`ditbench.fit.fit_table` on its rows grouped by
    :data:`FIT_GROUPS`, the columns the figures split series by (None without ok rows).

    A fits.csv in which every group is ``insufficient-data`` usually means it was grouped by a
    per-case column (one row per group), so the report's own grouping is more useful."""
    if run.fits is not None and "exponent" in run.fits.columns and run.fits["exponent"].notna().any():
        return run.fits
    results = run.results
    if "workload" in results.columns:  # stats rows are rates (their own section), not timings
        results = results[(results["workload"] != "stats").fillna(True)]
    if not (results["status"] == "ok").any():
        return run.fits
    by = [c for c in FIT_GROUPS if c in results.columns and results[c].notna().any()]
    return fit.fit_table(results, by=by)
