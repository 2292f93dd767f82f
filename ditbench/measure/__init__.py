"""Measurement engine: sweep specs and presets → cases → timed, checked rows in results.csv.

Typical use::

    from ditbench.measure import get_preset, run_sweep
    frame = run_sweep(get_preset("smoke"), "results/smoke", threads=2)

Presets: ``smoke``, ``default`` (E1–E3), ``peers`` (E6), ``dit`` (E5), ``stats`` and ``stats-gpu`` (E7/E8), ``full``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .cases import Case, check_spec, expand
    from .executor import EXECUTORS, Executor, InProcessExecutor, WorkerExecutor
    from .family import Family, family_names, get_family
    from .presets import get_preset, preset_names
    from .results import COLUMNS, REQUIRED_COLUMNS, ResultStore, read_results
    from .runner import plan, run_sweep
    from .spec import Preset, SweepSpec, dump_toml, load_config, load_preset_text
    from .summary import summarize

# Imported on first use: ``import ditbench.measure.spec`` (the CLI, the preset loader) loads no torch.
__getattr__, __dir__ = lazy_names(__name__, {
    "cases": ("Case", "check_spec", "expand"),
    "executor": ("EXECUTORS", "Executor", "InProcessExecutor", "WorkerExecutor"),
    "family": ("Family", "family_names", "get_family"),
    "presets": ("get_preset", "preset_names"),
    "results": ("COLUMNS", "REQUIRED_COLUMNS", "ResultStore", "read_results"),
    "runner": ("plan", "run_sweep"),
    "spec": ("Preset", "SweepSpec", "dump_toml", "load_config", "load_preset_text"),
    "summary": ("summarize",),
})
__all__ = [
    "COLUMNS", "Case", "EXECUTORS", "Executor", "Family", "InProcessExecutor", "Preset", "REQUIRED_COLUMNS",
    "ResultStore", "SweepSpec", "WorkerExecutor", "check_spec", "dump_toml", "expand", "family_names",
    "get_family", "get_preset", "load_config", "load_preset_text", "plan", "preset_names", "read_results",
    "run_sweep", "summarize",
]
