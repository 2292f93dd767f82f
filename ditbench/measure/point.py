"""Measure one case: build inputs, call the kernel once for peak memory and accuracy, then time it.

This is what an executor runs, in whatever process or machine it owns: :func:`run_case` with that
worker's :class:`~.machine.Machine` (device check and cost-model skips with the machine's own
rate and memory, then :func:`measure_case`). It returns one results row (a dict over
:data:`ditbench.schema.COLUMNS`). Running out of memory, or a kernel or family refusing the case
(:class:`ditbench.errors.KernelRefusal`, "unsupported here"), becomes a ``skipped`` row with the
reason; anything else a kernel raises is a ``failed`` row carrying the exception text and where
it was raised. Every row that is not ok names its cause in ``failure`` (:data:`~.results.FAILURES`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch.utils.benchmark.utils.common import set_torch_threads as benchmark_threads

from .. import theory
from ..attention import KERNELS, Kernel
from ..errors import KernelRefusal
from .budget import budget_fields, budget_reasons, predicted, reference_flops
from .cases import Case
from .machine import Machine
from .drift import bracket, drift_clock
from .memo import remembered
from .memory import heap_policy, measure_peak, minor_faults
from .timing import one_call_timing, time_call
from .family import get_family
from .workloads import target_of

# Parameter names under which kernels state their rank (polynomial: from degree; peers: features).
_RANK_PARAMS = ("rank", "num_features", "features", "landmarks")


def base_row(case: Case) -> dict[str, Any]:
    """The columns known before anything runs: the case's identity, parameters and prediction."""
    kernel = KERNELS.get(case.kernel)
    params = kernel.resolved_params(case.kwargs) if kernel is not None else dict(case.params)
    cost = predicted(case) if kernel is not None else None
    row: dict[str, Any] = {
        "case_id": case.case_id, "experiment": case.experiment, "kernel": case.kernel, "op": case.op,
        "n": case.n, "m": case.m, "d": case.d, "dv": case.dv, "bound": case.bound, "bound_spec": case.bound_spec,
        "scale": case.scale, "scale_spec": case.scale_spec, "eps": params.get("eps"),
        "params": json.dumps(dict(case.params), sort_keys=True), "dtype": case.dtype, "device": case.device,
        "threads": case.threads, "seed": case.seed, "value_bound": case.value_bound, "timer": case.timer,
        "predicted_flops": None if cost is None else cost.flops,
        "predicted_bytes": None if cost is None else cost.bytes,
        "predicted_ref_flops": reference_flops(case) if kernel is not None else None,
        "pass_index": case.pass_index,
        "workload": case.workload,
        "setting": json.dumps(dict(case.setting), sort_keys=True) if case.setting else "",
        "target_kernel": target_of(case.kernel) if case.op == "forward" and case.workload == "attention" else None,
        # What the report needs to know about the kernel and the theory, written into the row.
        "exact": None if kernel is None else kernel.exact,
        "threshold": theory.entry_threshold(case.n) if case.n >= 2 else None,
    }
    row.update(_describe(kernel, case, params))
    return row


def _describe(kernel: Kernel | None, case: Case, params: Mapping[str, Any]) -> dict[str, Any]:
    """The prediction of degree and rank (worst-case radius scale·d·B²): from an optional
    ``kernel.describe(problem, params)`` hook, else from params; a measured row replaces them with
    what ran on its inputs (ditbench.measure.workloads.realised). The hook is not consulted where
    the kernel refuses the problem (it may raise there, e.g. the polynomial kernel when no degree
    reaches eps)."""
    if kernel is not None and kernel.describe is not None and not kernel.unsupported_reasons(case.problem(), params):
        info = dict(kernel.describe(case.problem(), params))
        return {"degree": info.get("degree"), "rank": info.get("rank"), "impl": info.get("impl"),
                "poly_radius": info.get("radius")}
    rank = next((params[name] for name in _RANK_PARAMS if params.get(name) is not None), None)
    return {"degree": params.get("degree"), "rank": rank, "impl": None}


def finish(row: dict[str, Any], status: str, reason: str = "", failure: str = "", **values: Any) -> dict[str, Any]:
    """Return ``row`` with ``status``, ``reason``, ``failure`` (the cause of a row that is not ok,
    one of :data:`~.results.FAILURES`) and measured ``values`` filled in."""
    if status not in ("ok", "skipped", "failed"):
        raise ValueError(f"status={status!r} must be one of ok, skipped, failed")
    return {**row, **values, "status": status, "reason": reason, "failure": failure}


def run_case(case: Case, machine: Machine) -> dict[str, Any]:
    """Run ``case`` on this worker, whose machine is ``machine``: skipped (no device, or over this
    machine's budget) or measured. The row carries the machine's fields and the budget figures."""
    stamp = machine.row_fields()
    if not machine.available:
        reason = f"CUDA requested but torch.cuda.is_available() is False on {machine.label}"
        return finish(base_row(case), "skipped", reason, failure="no-device", **stamp)
    assert machine.rates is not None
    stamp.update(budget_fields(case, machine.rates, machine.memory_bytes))
    reasons = budget_reasons(case, machine.rates, machine.memory_bytes)
    if reasons:
        return finish(base_row(case), "skipped", "; ".join(reasons), failure="budget", **stamp)
    return {**measure_case(case), **stamp}


def measure_case(case: Case) -> dict[str, Any]:
    """Run ``case`` here and return its row (status ok, skipped on out-of-memory, or failed)."""
    start = time.perf_counter()
    row = base_row(case)
    torch.set_num_threads(case.threads)
    try:
        values = _measure(case)
    except torch.OutOfMemoryError as err:
        return finish(row, "skipped", f"out of memory: {_first_line(err)}", failure="oom",
                      wall_s=time.perf_counter() - start)
    except KernelRefusal as err:  # "unsupported here, with a reason" (ditbench.errors): not a bug
        return finish(row, "skipped", str(err), failure="refused", wall_s=time.perf_counter() - start)
    except Exception as err:  # recorded, not hidden: the row carries the exception and where it came from
        return finish(row, "failed", _describe_exception(err), failure="error", wall_s=time.perf_counter() - start)
    reason = f"{values['nonfinite']} non-finite output value(s)" if values["nonfinite"] else ""
    return finish(row, "ok", reason, wall_s=time.perf_counter() - start, **values)


# What a point's first visit in this worker measured, keyed by the point (its pass-0 case_id): the
# peak memory is a property of the point, so later passes reuse it. Measuring it needs the heap
# trimmed first (memory.measure_peak), which made every later warm-up page-fault its whole working
# set again: ≈ 1.5× a call at the largest sizes (exact at n = 2^14: 1.37 s against 0.90 s).
@dataclasses.dataclass(frozen=True)
class FirstVisit:
    peak_bytes: int | None
    mem_method: str
    call_s: float  # the first visit's median seconds per call


_VISITED: OrderedDict[str, FirstVisit] = OrderedDict()  # pass 0's case_id → what its first visit measured


def _warm_start(case: Case, method: str, visit: FirstVisit) -> bool:
    """Whether a later visit in this worker (``visit`` is the point's first) may time its very
    first call: the point's one call filled ``min_run_time`` (so a block is single calls), on a
    host timer. Its first-call effects were paid at the first visit: in the three default runs of
    record, ln(warm-up / median) of later passes at such points had medians 0.00–0.02 per kernel
    and size (docs/measure.md "Passes"); the warm-up would only double the visit."""
    return method in ("blocked", "cpu") and visit.call_s >= case.min_run_time


def _measure(case: Case) -> dict[str, Any]:
    prepared = get_family(case.workload).prepare(case)
    # On CUDA: device time from CUDA events with L2 flushed between calls (timing.cuda_event_timing).
    method = "cuda_events" if case.device.startswith("cuda") else case.timer
    point = dataclasses.replace(case, pass_index=0).case_id  # a string: any parameter value keys it
    visit = _VISITED.get(point)
    if visit is not None and _warm_start(case, method, visit):  # the first timed call's output is scored
        peak_bytes, mem_method, warmup_s = visit.peak_bytes, visit.mem_method, None
        (timing, out), faults, drift_ref_s = _timed(lambda: one_call_timing(
            prepared.call, threads=case.threads, min_run_time=case.min_run_time,
            min_repeats=case.min_repeats, method=method), method)
        metrics = _score(prepared, case, out)
        del out
    else:
        start = time.perf_counter()
        out, peak_bytes, mem_method = _warm_up(prepared, case, visit)  # first call: the warm-up (and peak, once)
        warmup_s = time.perf_counter() - start  # kept as a timing (first-call effects), never fitted
        metrics = _score(prepared, case, out)
        del out
        timing, faults, drift_ref_s = _timed(lambda: time_call(
            prepared.call, threads=case.threads, min_run_time=case.min_run_time, method=method,
            min_repeats=case.min_repeats, warmup_s=warmup_s, label=f"{case.experiment}/{case.kernel}"), method)
        remembered(_VISITED, point, lambda: FirstVisit(peak_bytes, mem_method, timing.median_s))
    return {
        **metrics, "median_s": timing.median_s, "iqr_s": timing.iqr_s, "repeats": timing.repeats, "timer": method,
        "calls_per_block": timing.calls_per_block, "peak_bytes": peak_bytes, "mem_method": mem_method,
        "warmup_s": warmup_s, "samples": json.dumps([float(f"{t:.6g}") for t in timing.samples]),
        "faults_per_call": faults / (timing.repeats * timing.calls_per_block),
        "heap_policy": heap_policy(), "drift_ref_s": drift_ref_s,
    }


T = TypeVar("T")


def _timed(run: Callable[[], T], method: str) -> tuple[T, int, float | None]:
    """``run()`` (the timed blocks) with what brackets them: (its result, minor page faults during
    it, drift reference seconds). The drift reference (ditbench.measure.drift) runs right before
    and after, on the same threads (measure_case set them): the fit regresses out the machine's
    speed drift that it shares with the kernel. Not on CUDA, where the timing is device time."""
    clock = drift_clock() if method != "cuda_events" else None
    before = clock.seconds() if clock is not None else None
    faults = minor_faults()
    result = run()
    faults = minor_faults() - faults
    drift_ref_s = bracket(before, clock.seconds()) if clock is not None and before is not None else None
    return result, faults, drift_ref_s


def _score(prepared: Any, case: Case, out: Any) -> dict[str, Any]:
    """The output's metrics. Scoring is untimed (the float64 reference, the guarantee's rounding
    pass, the sub-problem call): it runs on every core this process may use, whatever the timed
    calls' thread count."""
    with benchmark_threads(max(case.threads, usable_cores())):
        return dict(prepared.score(out))


def _warm_up(prepared: Any, case: Case, visit: FirstVisit | None) -> tuple[Any, int | None, str]:
    """The first call of a visit: (output, peak_bytes, mem_method); measures the peak only at the
    point's first visit in this worker (``visit`` is None, :data:`_VISITED`)."""
    if visit is not None:
        return prepared.call(), visit.peak_bytes, visit.mem_method
    return measure_peak(prepared.call, case.device)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform says, else cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _describe_exception(err: BaseException) -> str:
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name})" if frame else ""
    return f"{type(err).__name__}: {_first_line(err)}{where}"
