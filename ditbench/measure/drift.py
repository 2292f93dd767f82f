"""The drift reference: a short fixed workload timed right before and after every timed point.

Why (docs/measure.md, "The drift reference"): on the shared 2-core machines the speed of the CPU
itself drifts over seconds — host frequency, neighbours' cache and memory pressure — and that
drift is shared by whatever runs at the time. Process CPU time does not remove it (measured:
``time.thread_time()`` equals wall time call by call, CPU steal ≈ 0), and the passes only
average it. A fixed workload timed just before and just after a point's timed blocks, on the
same threads, sees the same drift; the fit regresses ln t on the centred ln(reference) within
each size (:mod:`ditbench.fit.variance`) and so removes the part of the drift the reference
shares with the kernel, and estimates from the data how much that is (γ̂; a useless reference
gets γ̂ ≈ 0 and costs one degree of freedom).

The workload mixes the three resources the kernels use — a float32 matmul (compute: the
products of exact attention and of the feature maps), ``exp`` over a vector (the softmax's
transcendental) and a copy of a buffer larger than L2 (memory bandwidth) — each about a third
of its ≈ 8 ms, so a drift in any of them moves the reference. Its row column is
``drift_ref_s``: the geometric mean of the two timings (seconds of one reference call), and the
run's meta.json names the reference and its version. Changing the workload changes
:data:`REFERENCE`'s version: ``drift_ref_s`` of two versions are not comparable.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DriftReference:
    """A fixed reference workload (sizes chosen for ≈ 8 ms on 2 cores of the 2-core AMD EPYC)."""

    name: str
    version: int
    matmul: int = 256  # square float32 matmul side; 2·256³ = 34 MFLOP a product
    matmuls: int = 12  # products per call (≈ 0.4 GFLOP, ≈ 3 ms at ≈ 145 GFLOP/s)
    exp_elements: int = 1 << 19  # float32 exp per call, twice (≈ 1 M exp, ≈ 2 ms at ≈ 0.5 G/s)
    copy_bytes: int = 8 << 20  # bytes copied per call, twice (16 MB, ≈ 3–4 ms at ≈ 4–5 GB/s)

    def describe(self) -> dict[str, object]:
        """The reference as meta.json records it."""
        return {"name": self.name, "version": self.version, "matmul": [self.matmul, self.matmuls],
                "exp_elements": 2 * self.exp_elements, "copy_bytes": 2 * self.copy_bytes,
                "column": "drift_ref_s", "what": "geometric mean of the reference's seconds right before and "
                                                 "right after the point's timed blocks, same threads"}

    def build(self) -> Callable[[], None]:
        """The workload as a callable (inputs allocated once, here)."""
        a = torch.rand(self.matmul, self.matmul)  # (s, s)
        b = torch.rand(self.matmul, self.matmul)  # (s, s)
        product = torch.empty(self.matmul, self.matmul)  # (s, s)
        x = torch.rand(self.exp_elements) - 0.5  # (e,)
        y = torch.empty_like(x)  # (e,)
        src = torch.rand(self.copy_bytes // 4)  # (c,) float32
        dst = torch.empty_like(src)  # (c,)

        def run() -> None:
            for _ in range(self.matmuls):
                torch.mm(a, b, out=product)
            for _ in range(2):
                torch.exp(x, out=y)
                dst.copy_(src)
        return run


REFERENCE = DriftReference(name="mm256x12+exp1M+copy16MB", version=1)


class DriftClock:
    """Times :data:`REFERENCE` (built and warmed once per process) on the current torch threads."""

    def __init__(self, reference: DriftReference = REFERENCE) -> None:
        self.reference = reference
        self._run = reference.build()
        self._run()  # warm-up: first-call allocation and dispatch

    def seconds(self) -> float:
        """Seconds of one call of the reference."""
        start = time.perf_counter()
        self._run()
        return time.perf_counter() - start


_CLOCK: DriftClock | None = None


def drift_clock() -> DriftClock:
    """This process's :class:`DriftClock` (built on first use)."""
    global _CLOCK
    if _CLOCK is None:
        _CLOCK = DriftClock()
    return _CLOCK


def bracket(before: float, after: float) -> float:
    """The row's ``drift_ref_s``: the geometric mean of the timings before and after (seconds)."""
    if not (before > 0 and after > 0):
        raise ValueError(f"reference timings must be > 0 s; got before={before!r}, after={after!r}")
    return math.sqrt(before * after)
