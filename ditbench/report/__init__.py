"""HTML reports: a static site with one page per run (figures, fits, skipped points, environment)
built from result files only (results.csv, meta.json, fits.csv; DESIGN §5).

The names below are imported on first use, so ``import ditbench.report`` loads no plotly,
statsmodels or scipy until a report is built."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .data import Run, load_run
    from .site import build_report

_LAZY = {"Run": "data", "load_run": "data", "build_report": "site"}
__all__ = ["Run", "build_report", "load_run"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
