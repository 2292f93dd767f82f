"""Skip points that would blow the time or memory budget, using the one cost model (theory).

A kernel's ``predicted_cost`` gives FLOPs and extra bytes; the machine's rate turns FLOPs into
seconds. The rate is *measured* by every worker on its own machine (:mod:`.machine`) as the
effective FLOP rate of the exact streamed kernel at n = m = 2048 (cost-model FLOPs / median
seconds). That rate includes exp, which is ~100× slower per element than a multiply-add on CPU,
so it is lower than the matmul peak and the predicted seconds are conservative (too high, never
too low by much) for every kernel.

On a shared machine one timing swings by orders of magnitude from run to run, so the calibration
repeats the timing (``CALIBRATION_REPEATS`` independent blocked timings) and uses the median rate;
the per-repeat rates are kept (meta.json) and every row records the rate and prediction its skip
decision used, so decisions are reproducible from the results file.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from .. import theory
from .._checks import available_memory  # noqa: F401  (re-exported: measure's callers use it)
from ..attention import exact_attention
from .cases import Case
from .timing import time_call
from .family import get_family

# DESIGN §6, measured on the 2-core CI machines: float32 matmul ≈ 145 GFLOP/s, exp ≈ 0.5 G/s.
# The fallback rate where calibration is skipped assumes exact attention's mix of the two at d = 8.
ASSUMED_FLOPS_PER_S = 2.0e9


CALIBRATION_REPEATS = 5  # independent timings whose median rate is used (odd: a true median)


@dataclass(frozen=True)
class Rates:
    """Effective compute rates of the machine for the cost model."""

    flops_per_s: float  # effective FLOP/s of exact attention (exp included): the median of `samples`
    method: str  # "measured" | "assumed"
    samples: tuple[float, ...] = ()  # FLOP/s of each calibration repeat (empty when assumed)
    # The fused CPU polynomial kernel's own FLOP/s (theory.Cost.rate == "fused"): median of
    # `fused_samples`; None where it was not measured (no CPU, no extension, an assumed rate),
    # and then such costs use `flops_per_s` (conservative: it includes exp).
    fused_flops_per_s: float | None = None
    fused_samples: tuple[float, ...] = ()

    def rate(self, kind: str = "exact") -> float:
        """FLOP/s for a cost of this kind (theory.Cost.rate): the fused rate where measured."""
        if kind not in ("exact", "fused"):
            raise ValueError(f"rate kind {kind!r} is not one of ['exact', 'fused']")
        return self.fused_flops_per_s if kind == "fused" and self.fused_flops_per_s else self.flops_per_s

    def seconds(self, flops: float, kind: str = "exact") -> float:
        return flops / self.rate(kind)

    @property
    def spread(self) -> float | None:
        """max/min of the repeats' rates (1 = perfectly steady; None without repeats)."""
        return max(self.samples) / min(self.samples) if self.samples else None


def calibrate(device: str, threads: int, dtype: torch.dtype = torch.float32,
              repeats: int = CALIBRATION_REPEATS) -> Rates:
    """Measure the effective rate of :func:`exact_attention` at n = m = 2048, d = dv = 8: ``repeats``
    blocked timings (each ≥ 0.05 s; one call is ~0.1 s on 2 cores, large enough that per-call
    overheads do not dominate, as they would at n = 1024) and their median rate."""
    if repeats < 1:
        raise ValueError(f"calibration repeats={repeats} must be ≥ 1")
    n, d = 2048, 8
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.rand(n, d, generator=gen, dtype=dtype).to(device) for _ in range(3))  # (n, d) each
    flops = theory.exact_forward_cost(n, n, d, d).flops
    samples = tuple(flops / time_call(lambda: exact_attention(q, k, v, scale=1 / d), threads=threads,
                                      min_run_time=0.05).median_s for _ in range(repeats))
    fused = _fused_samples(device, threads, dtype, repeats)
    return Rates(flops_per_s=statistics.median(samples), method="measured", samples=samples,
                 fused_flops_per_s=statistics.median(fused) if fused else None, fused_samples=fused)


def _fused_samples(device: str, threads: int, dtype: torch.dtype, repeats: int) -> tuple[float, ...]:
    """FLOP/s of the fused CPU polynomial kernel at n = m = 2^14, d = dv = 8, degree 4 (rank 495,
    the perf setting's; ~5 ms a call on 2 cores), ``repeats`` blocked timings of ≥ 0.05 s, with
    the FLOPs its cost model counts; () where it cannot run (not CPU, not float32/64, no extension)."""
    from ..attention import fused, polynomial_attention

    if device != "cpu" or dtype not in (torch.float32, torch.float64) or not fused.available():
        return ()
    n, d, degree = 2**14, 8, 4
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.rand(n, d, generator=gen, dtype=dtype) * 2 - 1 for _ in range(3))  # (n, d) each
    flops = theory.polynomial_forward_cost(n, n, d, d, degree, fused=True, virtual_top=True).flops

    def call() -> torch.Tensor:
        return polynomial_attention(q, k, v, scale=1 / d, degree=degree, impl="fused")

    return tuple(flops / time_call(call, threads=threads, min_run_time=0.05).median_s for _ in range(repeats))


def predicted(case: Case) -> theory.Cost | None:
    """The predicted cost of one timed call of ``case`` (None if there is no model): the kernel's
    own for an attention case, the family's estimate for others (``Family.cost``)."""
    return get_family(case.workload).cost(case)


def measurement_bytes(case: Case) -> float:
    """Memory the measurement itself needs besides the timed call's own (inputs, references)."""
    return get_family(case.workload).overhead_bytes(case)


def reference_flops(case: Case) -> float:
    """float32-equivalent FLOPs of the point's float64 accuracy check (0 where the family has no
    model): part of every point's prediction, so a point whose reference alone would exceed its
    timeout is skipped with that reason instead of timing out."""
    model = get_family(case.workload).reference_flops
    return 0.0 if model is None else float(model(case))


def point_seconds(case: Case, call_s: float, reference_s: float) -> float:
    """Predicted wall time of one point: the reference, the warm-up call, and the timing (at least
    ``min_repeats`` calls, at least ``min_run_time``, plus the Timer's block-size estimate)."""
    return reference_s + call_s * (2 + case.min_repeats) + case.min_run_time


def budget_reasons(case: Case, rates: Rates, memory_available: float) -> list[str]:
    """Why ``case`` should be skipped rather than run (empty list = run it)."""
    reasons = []
    setup = get_family(case.workload).setup_flops
    if setup is not None and rates.seconds(setup(case)) > case.time_budget_s:
        flops = setup(case)
        reasons.append(f"building the case is predicted to take {rates.seconds(flops):.3g} s ({flops:.3g} FLOP at "
                       f"{rates.flops_per_s:.3g} FLOP/s, {rates.method}), over the time budget of "
                       f"{case.time_budget_s:g} s")
    cost = predicted(case)
    if cost is None:
        return reasons
    seconds = rates.seconds(cost.flops, cost.rate)
    if seconds > case.time_budget_s:
        own = "" if cost.rate == "exact" else f", the {cost.rate} kernel's own rate"
        reasons.append(f"predicted {seconds:.3g} s per call ({cost.flops:.3g} FLOP at {rates.rate(cost.rate):.3g} "
                       f"FLOP/s, {rates.method}{own}) exceeds the time budget of {case.time_budget_s:g} s")
    ref = reference_flops(case)
    point_s = point_seconds(case, seconds, rates.seconds(ref))
    if point_s > case.timeout_s and seconds <= case.time_budget_s:  # (one reason per cause)
        reasons.append(f"predicted {point_s:.3g} s for the whole point (float64 reference {rates.seconds(ref):.3g} s "
                       f"on {min(case.n, case.ref_rows)} rows, {seconds:.3g} s per call) exceeds its timeout of "
                       f"{case.timeout_s:g} s")
    need = cost.bytes + measurement_bytes(case)
    limit = case.memory_fraction * memory_available
    if need > limit:
        reasons.append(f"predicted {need / 2**30:.3g} GiB exceeds the memory budget of {limit / 2**30:.3g} GiB "
                       f"({case.memory_fraction:g} of {memory_available / 2**30:.3g} GiB available)")
    return reasons


def budget_fields(case: Case, rates: Rates, memory_available: float) -> dict[str, float | str | None]:
    """The numbers :func:`budget_reasons` compares, as row columns, so that every row's skip decision
    can be checked from the results file alone (predicted_s vs time_budget_s, predicted_point_s vs
    timeout_s, memory_need_bytes vs memory_limit_bytes; predicted_point_s itself is
    predicted_ref_flops / rate_flops_per_s + predicted_s·(2 + min_repeats) + min_run_time)."""
    cost = predicted(case)
    call_s = None if cost is None else rates.seconds(cost.flops, cost.rate)
    point_s = None if call_s is None else point_seconds(case, call_s, rates.seconds(reference_flops(case)))
    return {
        "rate_flops_per_s": rates.flops_per_s, "rate_method": rates.method,
        "call_rate_flops_per_s": rates.flops_per_s if cost is None else rates.rate(cost.rate),
        "predicted_s": call_s, "time_budget_s": case.time_budget_s,
        "predicted_point_s": point_s, "timeout_s": case.timeout_s, "min_run_time": case.min_run_time,
        "min_repeats": case.min_repeats,
        "memory_need_bytes": None if cost is None else cost.bytes + measurement_bytes(case),
        "memory_limit_bytes": case.memory_fraction * memory_available,
    }
