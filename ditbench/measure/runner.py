"""The one runner: validate a preset, expand it into cases, skip what cannot or should not run,
hand the rest to an executor in batches, and append every row to the results store as it finishes.

The runner alone writes the store and owns the skip policy: a case outside its kernel's limits is
skipped before it is sent anywhere; a case whose setting already timed out at a smaller n is
skipped when its turn comes (:class:`TimeoutRule`, driven by the rows' ``failure`` column).
Machine-dependent skips (no such device, over the cost-model budget) are decided by the worker
that would run the case, with its own calibration (:func:`.point.run_case`).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..attention import KERNELS
from . import guard
from .budget import CALIBRATION_REPEATS, Rates
from .cases import Case, expand
from .drift import REFERENCE
from .executor import Executor, WorkerExecutor
from .point import base_row, finish
from .results import ResultStore, read_meta, run_metadata, utc_now, write_meta
from .spec import ORDERS, Preset

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
    return interleaved(cases, order=preset.defaults.order or "shuffle")


ORDER_SEED = 0  # the shuffled order of every multi-pass run is reproducible (recorded in meta.json)


def interleaved(cases: list[Case], seed: int = ORDER_SEED, order: str = "shuffle") -> list[Case]:
    """Pass 0 of every point, then pass 1, …; inside each pass a seeded shuffled order, so slow
    drift of the machine becomes between-pass noise that the fit's two-level model sees, instead
    of a trend along n. ``order`` (spec.ORDERS): "shuffle" shuffles all points of the pass;
    "blocks" visits each setting's points back to back (sizes shuffled, settings shuffled), so
    one fit group's sizes of a pass are seconds apart and share more of the drift. Single-pass
    runs keep the expansion order (smallest points of each setting first)."""
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not allowed; allowed values: {list(ORDERS)}")
    if all(case.passes == 1 for case in cases):
        return cases
    rng = random.Random(seed)
    out: list[Case] = []
    for index in sorted({case.pass_index for case in cases}):
        group = [case for case in cases if case.pass_index == index]
        if order == "shuffle":
            rng.shuffle(group)
            out.extend(group)
            continue
        blocks: dict[tuple, list[Case]] = {}
        for case in group:
            blocks.setdefault(setting_of(case), []).append(case)
        settings = list(blocks.values())
        rng.shuffle(settings)
        for block in settings:
            rng.shuffle(block)
            out.extend(block)
    return out


def unsupported_reasons(case: Case) -> list[str]:
    """Why ``case`` is outside its kernel's declared limits (machine-independent; empty: run it)."""
    return KERNELS[case.kernel].unsupported_reasons(case.problem(), case.kwargs)


class TimeoutRule:
    """"n timed out → a larger n of the same setting, or another pass of the same n, would too":
    skip those, from the rows' structured ``failure`` column (never from the wording of ``reason``)."""

    def __init__(self) -> None:
        self._first: dict[tuple, int] = {}  # setting → smallest n that timed out
        self._cases: set[str] = set()  # ids of the cases that timed out

    def observe(self, case: Case, row: dict) -> None:
        if row.get("failure") == "timeout":
            key = setting_of(case)
            self._first[key] = min(case.n, self._first.get(key, case.n))
            self._cases.add(case.case_id)

    def reason(self, case: Case) -> str | None:
        key = setting_of(case)
        first = self._first.get(key)
        if first is None or case.n < first or case.case_id in self._cases:
            return None
        if case.n == first:  # another pass of the point that timed out
            return f"n={first} of this setting timed out in another pass; this one would too"
        return f"n={first} of this setting timed out; a larger n would too"


def take_next(pending: list[Case], running: Counter[tuple]) -> Case:
    """The first pending case whose setting has nothing in flight (so a setting's next n waits for
    its smaller n's outcome while other work can go), else the first pending case."""
    for i, case in enumerate(pending):
        if not running[setting_of(case)]:
            return pending.pop(i)
    return pending.pop(0)


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
        rates: the cost model's rate on every worker; default each worker measures its own
            (:func:`budget.calibrate`, median of repeats; recorded in meta.json and per row).
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
    run_device = "cuda" if any(case.device == "cuda" for case in cases) else "cpu"
    todo = [case for case in cases if case.case_id not in done]
    meta = run_metadata(preset=preset.to_dict(), threads=threads, device=run_device, extra={
        "preset_name": preset.name, "preset_source": preset.source, "resume": resume,
        "cases_total": len(cases), "cases_already_done": len(cases) - len(todo),
        "calibration": {"repeats": CALIBRATION_REPEATS, "fixed_rate_flops_per_s": None if rates is None
                        else rates.flops_per_s, "per": "worker"},
        "machines": [], "executor": None,
        "order": {"passes": max(case.passes for case in cases), "shuffle_seed": ORDER_SEED,
                  "order": preset.defaults.order or "shuffle"},
        "drift_reference": REFERENCE.describe(),
    })
    meta.update(identity=identity, **({"resume_forced": forced} if forced else {}))
    if resume and paths.meta.exists() and not any(d["field"] == "meta.json" for d in forced):
        previous = read_meta(paths.meta)
        meta["previous_runs"] = previous.pop("previous_runs", []) + [
            {key: previous.get(key) for key in ("start_time", "end_time", "hostname", "git_commit", "status_counts",
                                                "machines")}]
    own_executor = executor is None
    executor = executor or WorkerExecutor()
    meta["executor"] = executor.name
    write_meta(paths.meta, meta)
    bar = tqdm(total=len(todo), desc=f"ditbench run {preset.name}", unit="pt", disable=not progress)

    def record(row: dict) -> None:
        store.append(row)
        bar.update(1)

    rule = TimeoutRule()
    running: Counter[tuple] = Counter()  # setting → cases submitted and not yet finished
    pending = list(todo)

    def feed() -> None:
        """Submit cases until the executor is full; record the ones the policy skips, in turn."""
        batch: list[Case] = []
        capacity = executor.capacity  # asked once: for a cluster it is a question to the scheduler
        while pending and sum(running.values()) < capacity:
            case = take_next(pending, running)
            reasons = unsupported_reasons(case)
            if reasons:
                record(finish(base_row(case), "skipped", "; ".join(reasons), failure="unsupported"))
                continue
            reason = rule.reason(case)
            if reason:
                record(finish(base_row(case), "skipped", reason, failure="after-timeout"))
                continue
            running[setting_of(case)] += 1
            batch.append(case)
        if batch:
            bar.set_postfix_str(f"{batch[-1].experiment} {batch[-1].kernel} n={batch[-1].n}", refresh=False)
            executor.submit(batch)

    try:
        executor.start(rates)
        meta["executor"] = executor.describe() | {"name": executor.name}
        feed()
        for case, row in executor.completed():
            running[setting_of(case)] -= 1
            record(row)
            rule.observe(case, row)
            feed()
    finally:
        bar.close()
        meta["machines"] = [machine.to_dict() for machine in executor.machines()]
        if own_executor:
            executor.close()
        frame = store.read()
        meta.update(end_time=utc_now(), status_counts={k: int(v) for k, v in frame["status"].value_counts().items()})
        write_meta(paths.meta, meta)
    return frame


def _run_device(cases: list[Case]) -> str:
    return "cuda" if any(case.device == "cuda" for case in cases) else "cpu"


def setting_of(case: Case) -> tuple:
    """The case's identity without n: m only when fixed (not following n), bound only as its spec
    (its value may be a function of n)."""
    m = "=n" if case.m == case.n else case.m
    skip = ("n", "m", "bound", "pass_index")
    return (m,) + tuple(getattr(case, name) for name in Case.IDENTITY if name not in skip)
