"""Timing one kernel call with ``torch.utils.benchmark.Timer`` (DESIGN §2).

The Timer fixes the thread count, and on CUDA its clock synchronises the device, so
asynchronous GPU work is never timed with a bare CPU clock. We report the median and the
interquartile range of the per-call times of the measured blocks, over at least
``min_repeats`` blocks: a slow call that alone fills ``min_run_time`` is timed again until
there are enough blocks for an IQR to mean something.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils import benchmark


@dataclass(frozen=True)
class Timing:
    median_s: float  # median seconds per call
    iqr_s: float  # interquartile range (75th − 25th percentile) of seconds per call over blocks
    repeats: int  # measured blocks; each is the mean of `calls_per_block` calls
    calls_per_block: int
    samples: tuple[float, ...] = ()  # seconds per call of every measured block, in order


def time_call(fn: Callable[[], Any], *, threads: int, min_run_time: float, method: str = "blocked",
              min_repeats: int = 3, label: str = "") -> Timing:
    """Time ``fn()``. ``method``: "blocked" (blocked_autorange) or "adaptive" (adaptive_autorange,
    which stops once the IQR is within 10 % of the median or after 10·min_run_time)."""
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, label=label)
    if method == "blocked":
        result = timer.blocked_autorange(min_run_time=min_run_time)
    elif method == "adaptive":
        result = timer.adaptive_autorange(threshold=0.1, min_run_time=min_run_time, max_run_time=10 * min_run_time)
    else:
        raise ValueError(f"timer method {method!r} is not allowed; allowed values: ['blocked', 'adaptive']")
    times = list(result.times)  # seconds per call, one entry per block
    while len(times) < min_repeats:
        times.extend(timer.timeit(result.number_per_run).times)
    q25, q50, q75 = np.percentile(times, [25, 50, 75])
    return Timing(median_s=float(q50), iqr_s=float(q75 - q25), repeats=len(times),
                  calls_per_block=int(result.number_per_run), samples=tuple(float(t) for t in times))
