"""HTML reports: a static site with one page per run (figures, fits, skipped points, environment)
built from result files only (results.csv, meta.json, fits.csv; DESIGN §5)."""
from __future__ import annotations

from .data import Run, load_run
from .site import build_report

__all__ = ["Run", "build_report", "load_run"]
