"""Measurement engine: sweep specs and presets → cases → timed, checked rows in results.csv.

Typical use::

    from ditbench.measure import get_preset, run_sweep
    frame = run_sweep(get_preset("smoke"), "results/smoke", threads=2)

Presets: ``smoke``, ``default`` (E1–E3), ``peers`` (E6), ``dit`` (E5), ``stats`` (E7/E8), ``full``.
"""
from __future__ import annotations

from .cases import Case, check_spec, expand
from . import dit_cases  # noqa: F401  (registers the "dit" workload family, E5)
from . import stats_cases  # noqa: F401  (registers the "stats" workload family, E7/E8)
from .executor import EXECUTORS, Executor, InProcessExecutor, WorkerExecutor
from .presets import get_preset, preset_names
from .results import COLUMNS, REQUIRED_COLUMNS, ResultStore, read_results
from .runner import plan, run_sweep
from .spec import Preset, SweepSpec, dump_toml, load_config, load_preset_text
from .summary import summarize

__all__ = [
    "COLUMNS", "Case", "EXECUTORS", "Executor", "InProcessExecutor", "Preset", "REQUIRED_COLUMNS", "ResultStore",
    "SweepSpec", "WorkerExecutor", "check_spec", "dump_toml", "expand", "get_preset", "load_config",
    "load_preset_text", "plan", "preset_names", "read_results", "run_sweep", "summarize",
]
