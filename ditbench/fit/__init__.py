"""Empirical complexity: power-law exponents with confidence intervals, regimes, crossovers.

Modules: :mod:`.power_law` (the fit), :mod:`.region` (which sizes are asymptotic),
:mod:`.regime` (labels), :mod:`.laws` (power, floor, step and named laws), :mod:`.variance`
(per-size two-level weights),
:mod:`.models` (AICc comparison of n·logᵖn, n², the exponent model),
:mod:`.crossover`, :mod:`.table` (one fit per group), :mod:`.readers` (CSV / asv /
pytest-benchmark), :mod:`.cli` (``ditbench fit``). User guide: docs/fit.md.
"""
from __future__ import annotations

from .crossover import Crossover, crossover
from .models import ModelComparison, compare_laws
from .power_law import ESTIMATORS, MODELS, InsufficientDataError, PowerLawFit, Step, fit_power_law
from .readers import read_results
from .regime import RegimeThresholds, Verdict, classify, verdict
from .region import FULL_RANGE, LocalSlope, RegionRule
from .table import default_group_columns, fit_table

__all__ = [
    "Crossover", "ESTIMATORS", "FULL_RANGE", "InsufficientDataError", "LocalSlope", "MODELS", "ModelComparison",
    "PowerLawFit", "RegimeThresholds", "RegionRule", "Step", "Verdict", "classify", "compare_laws", "crossover",
    "default_group_columns", "fit_power_law", "fit_table", "read_results", "verdict",
]
