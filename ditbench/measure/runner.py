"""The one runner: validate a preset, expand it into cases, skip what cannot or should not run,
hand the rest to an executor, and append every row to the results store as it finishes.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..attention import KERNELS
from . import guard
from .budget import Rates, available_memory, budget_reasons, calibrate
from .cases import Case, expand
from .executor import Executor, WorkerExecutor
from .point import base_row, finish
from .results import ResultStore, read_meta, run_metadata, utc_now, write_meta
from .spec import Preset

RESULTS_FILE = "results.csv"
META_FILE = "meta.json"


@dataclass(frozen=True)
class RunPaths:
    out: Path

    @property
    def results(self) -> Path:
        return self.out / RESULTS_FILE

    @property
    def meta(self) -> Path:
        return self.out / META_FILE


def plan(preset: Preset, *, threads: int, device: str | None = None) -> list[Case]:
    """Every case of every spec, validated before anything runs (raises ValueError on a bad spec)."""
    if threads < 1:
        raise ValueError(f"threads={threads} must be ≥ 1")
    if device is not None and device not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not allowed; allowed values: ['cpu', 'cuda']")
    cases = [case for spec in preset.specs for case in expand(spec, threads=threads, device=device)]
    if not cases:
        raise ValueError(f"preset {preset.name!r} expands to no cases")
    return cases


def skip_reasons(case: Case, rates: Rates | None, memory: float) -> list[str]:
    """Why ``case`` is recorded as skipped without running: no device, unsupported, or over budget."""
    if case.device == "cuda" and not torch.cuda.is_available():
        return ["CUDA requested but torch.cuda.is_available() is False on this machine"]
    reasons = KERNELS[case.kernel].unsupported_reasons(case.problem(), case.kwargs)
    if reasons or rates is None:
        return reasons
    return budget_reasons(case, rates, memory)


def run_sweep(preset: Preset, out: str | Path, *, force: bool = False, **options: Any) -> pd.DataFrame:
    """:func:`_run_sweep` holding the advisory lock on ``out`` (a concurrent run there fails at once);
    ``force`` lets ``resume`` continue a run whose spec, preset, threads, device or version differ
    (ditbench.measure.guard; meta.json then records both)."""
    cases = plan(preset, threads=options.get("threads", 2), device=options.get("device"))  # bad spec: no lock file
    with guard.RunLock(out):
        return _run_sweep(preset, out, force=force, cases=cases, **options)


def _run_sweep(
    preset: Preset,
    out: str | Path,
    *,
    threads: int = 2,
    device: str | None = None,
    resume: bool = False,
    executor: Executor | None = None,
    progress: bool = True,
    rates: Rates | None = None,
    force: bool = False,
    cases: list[Case] | None = None,
) -> pd.DataFrame:
    """Run ``preset`` and write ``out/results.csv`` and ``out/meta.json``; return all rows.

    Args:
        threads: torch threads for every timed call (recorded per row).
        device: overrides every spec's device ("cpu" | "cuda").
        resume: keep rows already in ``out/results.csv`` and run only the missing cases;
            without it an existing, non-empty results file is an error (never silently mixed).
        executor: where cases run; default a :class:`WorkerExecutor` (closed at the end).
        rates: machine rate for the cost model; default measured now (:func:`budget.calibrate`).
    """
    cases = cases if cases is not None else plan(preset, threads=threads, device=device)
    paths = RunPaths(Path(out))
    store = ResultStore(paths.results)
    done = store.recorded_ids()
    if done and not resume:
        raise ValueError(f"{paths.results} already holds {len(done)} rows; pass --resume to finish that run "
                         f"or choose another --out")
    identity = guard.run_identity(preset.to_dict(), threads=threads, device=_run_device(cases))
    forced = guard.check_resume(paths.meta, identity, force=force) if resume and (done or paths.meta.exists()) else []
    paths.out.mkdir(parents=True, exist_ok=True)
    devices = {case.device for case in cases}
    run_device = "cuda" if "cuda" in devices else "cpu"
    can_run = run_device == "cpu" or torch.cuda.is_available()
    torch.set_num_threads(threads)
    if rates is None and can_run:
        rates = calibrate(run_device, threads)
    memory = available_memory(run_device) if can_run else 0.0
    todo = [case for case in cases if case.case_id not in done]
    meta = run_metadata(preset=preset.to_dict(), threads=threads, device=run_device, extra={
        "preset_name": preset.name, "preset_source": preset.source, "resume": resume,
        "cases_total": len(cases), "cases_already_done": len(cases) - len(todo),
        "rate_flops_per_s": None if rates is None else rates.flops_per_s,
        "rate_method": None if rates is None else rates.method,
        "memory_available_bytes": memory, "executor": None,
    })
    meta.update(identity=identity, **({"resume_forced": forced} if forced else {}))
    if resume and paths.meta.exists() and not any(d["field"] == "meta.json" for d in forced):
        previous = read_meta(paths.meta)
        meta["previous_runs"] = previous.pop("previous_runs", []) + [
            {key: previous.get(key) for key in ("start_time", "end_time", "hostname", "git_commit", "status_counts")}]
    own_executor = executor is None
    executor = executor or WorkerExecutor()
    meta["executor"] = executor.name
    write_meta(paths.meta, meta)
    bar = tqdm(total=len(todo), desc=f"ditbench run {preset.name}", unit="pt", disable=not progress)

    timed_out: dict[tuple, int] = {}  # setting (the case minus n) → smallest n that timed out

    def runnable() -> Iterator[Case]:
        for case in todo:
            reasons = skip_reasons(case, rates, memory)
            first = timed_out.get(_setting(case))
            if not reasons and first is not None and case.n > first:
                reasons = [f"n={first} of this setting timed out; a larger n would too"]
            if reasons:
                store.append(finish(base_row(case), "skipped", "; ".join(reasons)))
                bar.update(1)
            else:
                bar.set_postfix_str(f"{case.experiment} {case.kernel} n={case.n}", refresh=False)
                yield case

    try:
        for case, row in executor.map(runnable()):
            store.append(row)
            if row["status"] == "failed" and str(row["reason"]).startswith("timeout"):
                key = _setting(case)
                timed_out[key] = min(case.n, timed_out.get(key, case.n))
            bar.update(1)
    finally:
        bar.close()
        if own_executor:
            executor.close()
        frame = store.read()
        meta.update(end_time=utc_now(), status_counts={k: int(v) for k, v in frame["status"].value_counts().items()})
        write_meta(paths.meta, meta)
    return frame


def _run_device(cases: list[Case]) -> str:
    return "cuda" if any(case.device == "cuda" for case in cases) else "cpu"


def _setting(case: Case) -> tuple:
    """The case's identity without n: m only when fixed (not following n), bound only as its spec
    (its value may be a function of n)."""
    m = "=n" if case.m == case.n else case.m
    return (m,) + tuple(getattr(case, name) for name in Case.IDENTITY if name not in ("n", "m", "bound"))
