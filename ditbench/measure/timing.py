"""Timing one kernel call with ``torch.utils.benchmark.Timer`` (DESIGN §2).

The Timer fixes the thread count, and on CUDA its clock synchronises the device, so
asynchronous GPU work is never timed with a bare CPU clock. We report the median and the
interquartile range of the per-call times of the measured blocks, over at least
``min_repeats`` blocks: a slow call that alone fills ``min_run_time`` is timed again until
there are enough blocks for an IQR to mean something.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils import benchmark


TIMER_METHODS = ("blocked", "adaptive", "cpu", "cuda_events")


@dataclass(frozen=True)
class Timing:
    median_s: float  # median seconds per call
    iqr_s: float  # interquartile range (75th − 25th percentile) of seconds per call over blocks
    repeats: int  # measured blocks; each is the mean of `calls_per_block` calls
    calls_per_block: int
    samples: tuple[float, ...] = ()  # seconds per call of every measured block, in order


def summarise(samples: list[float], calls_per_block: int) -> Timing:
    """Median and IQR of per-block seconds per call (the samples are kept)."""
    q25, q50, q75 = np.percentile(samples, [25, 50, 75])
    return Timing(median_s=float(q50), iqr_s=float(q75 - q25), repeats=len(samples),
                  calls_per_block=calls_per_block, samples=tuple(float(t) for t in samples))


def time_interleaved(calls: Mapping[str, Callable[[], Any]], *, rounds: int, threads: int,
                     min_run_time: Mapping[str, float], method: str = "blocked") -> dict[str, Timing]:
    """Time several calls in ``rounds`` rounds, each timing every call in turn (one autorange,
    at least one block), and merge each call's blocks. Interleaving puts every call's samples
    under the same (shared-machine) load, so their ratio is fair."""
    blocks: dict[str, list[float]] = {name: [] for name in calls}
    per_block: dict[str, int] = {}
    for _ in range(rounds):
        for name, fn in calls.items():
            t = time_call(fn, threads=threads, min_run_time=min_run_time[name], method=method, min_repeats=1,
                          label=name)
            blocks[name].extend(t.samples)
            per_block[name] = t.calls_per_block
    return {name: summarise(blocks[name], per_block[name]) for name in calls}


def time_call(fn: Callable[[], Any], *, threads: int, min_run_time: float, method: str = "blocked",
              min_repeats: int = 3, label: str = "", warmup_s: float | None = None) -> Timing:
    """Time ``fn()``. ``method``: "blocked" (blocked_autorange), "adaptive" (adaptive_autorange,
    which stops once the IQR is within 10 % of the median or after 10·min_run_time) or
    "cuda_events" (:func:`cuda_event_timing`: device time, L2 flushed between calls) or "cpu"
    (blocked_autorange on ``time.process_time``: the process's CPU seconds per call, which on a
    shared machine leaves out the time neighbours hold the core; with one thread it is the call's
    own work — ``ditbench compare``'s default sweep and the asv suite use it, docs/benchmarks.md).

    ``warmup_s``: seconds of a call of ``fn`` the caller has just made (the warm-up). When it
    alone fills ``min_run_time`` ("blocked"/"cpu"), the Timer's block-size estimate — which would
    spend one more untimed call only to find one call per block — is skipped: blocks of one call
    are timed until they fill ``min_run_time`` and number at least ``min_repeats``
    (:func:`one_call_blocks`). At the largest sizes that estimate was a third of each pass."""
    if method == "cuda_events":
        return cuda_event_timing(fn, min_run_time=min_run_time, min_repeats=min_repeats)
    clock = time.process_time if method == "cpu" else benchmark.utils.timer.timer  # the Timer's own default
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, label=label, timer=clock)
    if method in ("blocked", "cpu") and warmup_s is not None and warmup_s >= min_run_time:
        return summarise(one_call_blocks(fn, clock, threads=threads, min_run_time=min_run_time,
                                         min_repeats=min_repeats), 1)
    if method in ("blocked", "cpu"):
        result = timer.blocked_autorange(min_run_time=min_run_time)
    elif method == "adaptive":
        result = timer.adaptive_autorange(threshold=0.1, min_run_time=min_run_time, max_run_time=10 * min_run_time)
    else:
        raise ValueError(f"timer method {method!r} is not allowed; allowed values: {list(TIMER_METHODS)}")
    times = list(result.times)  # seconds per call, one entry per block
    while len(times) < min_repeats:
        times.extend(timer.timeit(result.number_per_run).times)
    return summarise(times, int(result.number_per_run))


def one_call_blocks(fn: Callable[[], Any], clock: Callable[[], float], *, threads: int, min_run_time: float,
                    min_repeats: int) -> list[float]:
    """Seconds of single calls of ``fn`` on ``clock`` (the Timer's), with the Timer's thread
    setting, until they add up to ``min_run_time`` and number at least ``min_repeats`` — what
    blocked_autorange does once its estimate says one call per block, without the estimate
    (``Timer.timeit`` would add two warm-up calls to every block)."""
    return _single_calls(fn, clock, threads=threads, min_run_time=min_run_time, min_repeats=min_repeats)[0]


def one_call_timing(fn: Callable[[], Any], *, threads: int, min_run_time: float, min_repeats: int,
                    method: str = "blocked") -> tuple[Timing, Any]:
    """:func:`one_call_blocks` on the clock of ``method`` ("blocked" or "cpu") with no warm-up,
    returning the timing and the first call's output (so a caller that needs an output to score
    makes no extra call). For a point already measured in this process whose one call fills
    ``min_run_time`` (ditbench.measure.point)."""
    if method not in ("blocked", "cpu"):
        raise ValueError(f"one_call_timing needs a host timer ('blocked' or 'cpu'), not {method!r}")
    clock = time.process_time if method == "cpu" else benchmark.utils.timer.timer
    times, first = _single_calls(fn, clock, threads=threads, min_run_time=min_run_time, min_repeats=min_repeats)
    return summarise(times, 1), first


def _single_calls(fn: Callable[[], Any], clock: Callable[[], float], *, threads: int, min_run_time: float,
                  min_repeats: int) -> tuple[list[float], Any]:
    times: list[float] = []
    first: Any = None
    with benchmark.utils.common.set_torch_threads(threads):
        while sum(times) < min_run_time or len(times) < min_repeats:
            start = clock()
            out = fn()
            times.append(clock() - start)
            if len(times) == 1:
                first = out
            del out
    return times, first


##################################################################################################
# CUDA: device-side timing with events, L2 flushed between calls (as triton.testing.do_bench)
##################################################################################################
# Bytes zeroed before every timed call so that no call finds its inputs in L2 left by the previous
# one (H100/H200 L2: 50–60 MB; triton.testing.do_bench uses 256 MB the same way).
L2_FLUSH_BYTES = 256 << 20


def cuda_event_timing(fn: Callable[[], Any], *, min_run_time: float, min_repeats: int = 3,
                      max_repeats: int = 1000, flush_bytes: int = L2_FLUSH_BYTES) -> Timing:
    """Median and IQR of ``fn()`` on the current CUDA device, each call bracketed by CUDA events
    and preceded by zeroing a ``flush_bytes`` buffer (outside the events), like
    ``triton.testing.do_bench(fn, return_mode="median")``; one call per sample
    (``calls_per_block`` = 1), enough calls to fill ``min_run_time`` seconds of kernel time."""
    import torch

    buffer = torch.empty(flush_bytes // 4, dtype=torch.int32, device="cuda")
    return event_timing(fn, event=lambda: torch.cuda.Event(enable_timing=True), synchronize=torch.cuda.synchronize,
                        flush=buffer.zero_, min_run_time=min_run_time, min_repeats=min_repeats,
                        max_repeats=max_repeats)


def event_timing(fn: Callable[[], Any], *, event: Callable[[], Any], synchronize: Callable[[], Any],
                 flush: Callable[[], Any], min_run_time: float, min_repeats: int = 3,
                 max_repeats: int = 1000) -> Timing:
    """The device-agnostic loop of :func:`cuda_event_timing` (events: ``record()`` and
    ``elapsed_time(other)`` in milliseconds, as torch.cuda.Event)."""
    def timed(count: int) -> list[float]:
        starts, ends = [event() for _ in range(count)], [event() for _ in range(count)]
        for start, end in zip(starts, ends):
            flush()
            start.record()
            fn()
            end.record()
        synchronize()
        return [start.elapsed_time(end) / 1e3 for start, end in zip(starts, ends)]  # seconds

    fn()  # warm-up: compilation, autotuning, allocator growth
    synchronize()
    estimate = float(np.median(timed(min(5, max_repeats))))
    count = int(min(max_repeats, max(min_repeats, math.ceil(min_run_time / max(estimate, 1e-7)))))
    return summarise(timed(count), 1)
