"""Measurement engine: sweep specs and presets → cases → timed, checked rows in results.csv.

Typical use::

    from ditbench.measure import get_preset, run_sweep
    frame = run_sweep(get_preset("smoke"), "results/smoke", threads=2)

Presets: ``smoke``, ``default`` (E1–E3), ``peers`` (E6), ``dit`` (E5), ``stats`` and ``stats-gpu`` (E7/E8), ``full``.
"""
from __future__ import annotations

from .cases import Case, check_spec, expand
from .family import Family, family_names, get_family
from .executor import EXECUTORS, Executor, InProcessExecutor, WorkerExecutor
from .presets import get_preset, preset_names
from .results import COLUMNS, REQUIRED_COLUMNS, ResultStore, read_results
from .runner import plan, run_sweep
from .spec import Preset, SweepSpec, dump_toml, load_config, load_preset_text
from .summary import summarize

__all__ = [
    "COLUMNS", "Case", "EXECUTORS", "Executor", "Family", "InProcessExecutor", "Preset", "REQUIRED_COLUMNS",
    "ResultStore", "SweepSpec", "WorkerExecutor", "check_spec", "dump_toml", "expand", "family_names", "get_family",
    "get_preset", "load_config", "load_preset_text", "plan", "preset_names", "read_results", "run_sweep", "summarize",
]
