"""HTML reports: a static site with one page per run (figures, fits, skipped points, environment)
built from result files only (results.csv, meta.json, fits.csv; DESIGN §5).

The names below are imported on first use, so ``import ditbench.report`` loads no plotly,
statsmodels or scipy until a report is built."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .data import Run, load_run
    from .site import build_report

__getattr__, __dir__ = lazy_names(__name__, {"data": ("Run", "load_run"), "site": ("build_report",)})
__all__ = ["Run", "build_report", "load_run"]
