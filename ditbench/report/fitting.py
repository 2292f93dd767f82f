"""The report's one door into :mod:`ditbench.fit`: fitted lines with 95% bands per plotted series,
crossovers n* against the exact baseline, and the fit table when a run has no ``fits.csv``.

Nothing is fitted here; every number comes from :mod:`ditbench.fit`. This module only decides
which rows go into which call and packages the answers for the figures and tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..fit import InsufficientDataError, fit_power_law
from .select import by_series

BAND_POINTS = 40  # sizes at which each fitted line and its band are drawn (geometric grid)


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
class Crossover:
    """Size n* (tokens) where ``kernel`` becomes faster than ``baseline``, with its 95% interval
    ``[low, high]`` (infinite ends when the data do not bound it) and a note from the fit."""

    kernel: str
    baseline: str
    n_star: float
    low: float
    high: float
    note: str = ""


def fitted_lines(rows: pd.DataFrame) -> list[FittedLine]:
    """Fit every series of ``rows`` (ok rows of one op, split as the figures split them) that
    has enough sizes; series with too few sizes simply get no line."""
    lines = []
    for label, g in by_series(rows):
        try:
            fit = fit_power_law(g["n"].to_numpy(float), g["median_s"].to_numpy(float))
        except InsufficientDataError:
            continue  # fewer sizes than a line with an interval needs: points only
        grid = np.geomspace(fit.n_min, fit.n_max, BAND_POINTS)  # (BAND_POINTS,)
        lines.append(FittedLine(label=label, exponent=fit.exponent, ci_low=fit.ci_low, ci_high=fit.ci_high,
                                regime=fit.regime, band=fit.predict(grid)))
    return lines


def run_fits(run) -> pd.DataFrame | None:
    """The run's fit table: its ``fits.csv`` when present (what `ditbench run` concluded), else
    :func:`ditbench.fit.fit_table` on its ok rows (None when nothing can be fitted)."""
    if run.fits is not None:
        return run.fits
    return None  # TODO(fit_table) once ditbench.fit exports it


def crossovers(rows: pd.DataFrame) -> list[Crossover]:
    """n* of every approximate kernel against the exact baseline, from :func:`ditbench.fit.crossover`."""
    return []  # TODO(crossover) once ditbench.fit exports it
