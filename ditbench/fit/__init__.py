"""Empirical complexity: power-law exponents with confidence intervals, regimes, crossovers.

Modules: :mod:`.power_law` (the fit), :mod:`.region` (which sizes are asymptotic),
:mod:`.regime` (labels), :mod:`.laws` (power, floor, step and named laws), :mod:`.variance`
(per-size two-level weights),
:mod:`.models` (AICc comparison of n·logᵖn, n², the exponent model),
:mod:`.crossover`, :mod:`.table` (one fit per group), :mod:`.readers` (CSV / asv /
pytest-benchmark), :mod:`.cli` (``ditbench fit``). User guide: docs/fit.md.

The names below are imported on first use, so ``import ditbench.fit`` (and of a light submodule
such as :mod:`.regime`) loads no statsmodels or scipy until a fit runs. ``fit.crossover`` stays
the function even after ``import ditbench.fit.crossover``, as it was with eager imports.
"""
from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_names

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .crossover import Crossover, crossover
    from .models import ModelComparison, compare_laws
    from .power_law import ESTIMATORS, MODELS, InsufficientDataError, PowerLawFit, Step, fit_power_law
    from .readers import read_results
    from .regime import RegimeThresholds, Verdict, classify, verdict
    from .region import FULL_RANGE, LocalSlope, RegionRule
    from .table import default_group_columns, fit_table

# submodule → the names it defines here.
_LAZY_MODULES = {
    "crossover": ("Crossover", "crossover"),
    "models": ("ModelComparison", "compare_laws"),
    "power_law": ("ESTIMATORS", "MODELS", "InsufficientDataError", "PowerLawFit", "Step", "fit_power_law"),
    "readers": ("read_results",),
    "regime": ("RegimeThresholds", "Verdict", "classify", "verdict"),
    "region": ("FULL_RANGE", "LocalSlope", "RegionRule"),
    "table": ("default_group_columns", "fit_table"),
}
_LAZY = {name for names in _LAZY_MODULES.values() for name in names}
__getattr__, __dir__ = lazy_names(__name__, _LAZY_MODULES)
__all__ = [
    "Crossover", "ESTIMATORS", "FULL_RANGE", "InsufficientDataError", "LocalSlope", "MODELS", "ModelComparison",
    "PowerLawFit", "RegimeThresholds", "RegionRule", "Step", "Verdict", "classify", "compare_laws", "crossover",
    "default_group_columns", "fit_power_law", "fit_table", "read_results", "verdict",
]


class _Package(types.ModuleType):
    """Importing a submodule binds it on the package under its own name; for ``crossover`` that
    would shadow the function of the same name, so that one binding is not made."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
