"""Empirical complexity: power-law exponents with confidence intervals, regimes, crossovers.

Modules: :mod:`.power_law` (the fit), :mod:`.region` (which sizes are asymptotic),
:mod:`.regime` (labels), :mod:`.models` (AIC comparison of n, n log n, n², power law),
:mod:`.crossover`, :mod:`.table` (one fit per group), :mod:`.readers` (CSV / asv /
pytest-benchmark), :mod:`.cli` (``ditbench fit``). User guide: docs/fit.md.
"""
from __future__ import annotations

from .crossover import Crossover, crossover
from .models import ModelComparison, compare_laws
from .power_law import ESTIMATORS, InsufficientDataError, PowerLawFit, fit_power_law
from .readers import read_results
from .regime import RegimeThresholds, classify
from .region import FULL_RANGE, LocalSlope, RegionRule
from .table import default_group_columns, fit_table

__all__ = [
    "Crossover", "ESTIMATORS", "FULL_RANGE", "InsufficientDataError", "LocalSlope", "ModelComparison",
    "PowerLawFit", "RegimeThresholds", "RegionRule", "classify", "compare_laws", "crossover",
    "default_group_columns", "fit_power_law", "fit_table", "read_results",
]
