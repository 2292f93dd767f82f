"""Shared pieces of the asv suite (``bench_*.py``) and the pytest-benchmark suite (``pytest_suite/``).

Everything here is built lazily: importing this module builds no tensor, so asv's discovery
(which imports every benchmark module) stays cheap. Inputs, float64 references and error
metrics are NOT re-implemented here: they come from the ``attention`` workload family
(:mod:`ditbench.measure.families.attention`), the same code that ``ditbench run`` uses, so a
benchmark and a sweep row of the same case see the same numbers. Exponents come from :func:`ditbench.fit.fit_power_law`.

A benchmark that needs something this machine lacks (a CUDA device) or a kernel that is not
registered raises ``NotImplementedError`` from its ``setup``,
which asv records as "skipped" and pytest turns into a skip (see ``pytest_suite/conftest.py``).
"""
from __future__ import annotations

import functools
import os
import time
import timeit
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch.utils import benchmark

from ditbench.attention import KERNELS, Kernel

##################################################################################################
# Fixed settings (recorded in every benchmark's name or extra_info)
##################################################################################################
# One thread: this suite runs on shared 2-core runners, where a second thread mostly measures the
# neighbours' load; docs/benchmarks.md gives the run-to-run noise this setting was measured with.
THREADS = 1
DTYPE = "float32"
SEED = 0  # the seed of every benchmark input (the same stream as a `ditbench run` case with seed 0)
DEVICES = ("cpu", "cuda")  # cuda benchmarks skip in setup where no GPU exists

# The clock of every time_* figure, per device. CPU: process CPU time. With one torch thread it is
# the kernel's own work, and on a shared runner it leaves out the time neighbours hold the core:
# measured here at load average 8 on 2 cores, exact attention at n = 2048, d = 4 took 0.216–0.298 s
# wall but 0.040–0.048 s CPU per call (idle: ~0.04 s), which made fitted exponents 3.0 (wall) vs
# 2.1 (CPU). CUDA: wall clock around a synchronised call (CPU time would miss the GPU's work).
TIMERS: Mapping[str, Callable[[], float]] = MappingProxyType({
    "cpu": time.process_time,
    "cuda": timeit.default_timer,
})

# Kernel parameters used whenever a benchmark runs a kernel (defaults of the registry otherwise).
# eps = 1e-3 is the paper-faithful sweeps' default target relative error (DESIGN §4, E2).
# Gradient kernels run at their registry defaults until they land and their parameters are known.
KERNEL_PARAMS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "polynomial": MappingProxyType({"eps": 1e-3}),
})


def scale_for(d: int) -> float:
    """The paper-faithful logit scale 1/d (Alman–Song), so |logit| ≤ B² for entries in [−B, B]."""
    return 1.0 / d


##################################################################################################
# Requirements: each raises NotImplementedError naming what is missing (asv: skipped)
##################################################################################################
def require_device(device: str) -> None:
    """Raise NotImplementedError for a device this machine does not have."""
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {DEVICES}")
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("device 'cuda' requested but torch.cuda.is_available() is False")


def require_kernel(name: str, op: str) -> Kernel:
    """The registered kernel ``name`` with operation ``op``, or NotImplementedError if not registered."""
    kernel = KERNELS.get(name)
    if kernel is None:
        raise NotImplementedError(f"kernel {name!r} is not registered; registered: {sorted(KERNELS)}")
    if kernel.op != op:
        raise ValueError(f"kernel {name!r} has op={kernel.op!r}, not {op!r}")
    return kernel


##################################################################################################
# Cases: one measured point, as ditbench.measure describes it
##################################################################################################
@dataclass(frozen=True)
class Point:
    """What a benchmark measures: the axes of its asv params (``n, d, bound, kernel, device``)."""

    kernel: str
    op: str  # "forward" | "backward"
    n: int  # tokens (m = n)
    d: int  # head dim (dv = d)
    bound: float  # entry bound B of q, k (forward) or a1, a2 (backward)
    device: str = "cpu"
    params: tuple[tuple[str, Any], ...] = field(default=())  # kernel params, sorted by name

    @classmethod
    def of(cls, kernel: str, op: str, n: int, d: int, bound: float, device: str = "cpu") -> Point:
        """A point with the suite's parameters for ``kernel`` (:data:`KERNEL_PARAMS`)."""
        params = tuple(sorted(KERNEL_PARAMS.get(kernel, {}).items()))
        return cls(kernel=kernel, op=op, n=int(n), d=int(d), bound=float(bound), device=device, params=params)

    def columns(self) -> dict[str, Any]:
        """The tidy-table columns of DESIGN §5 that this point fixes (for pytest-benchmark extra_info)."""
        return {"kernel": self.kernel, "op": self.op, "n": self.n, "m": self.n, "d": self.d, "dv": self.d,
                "bound": self.bound, "scale": scale_for(self.d), "dtype": DTYPE, "device": self.device,
                "threads": THREADS, "seed": SEED, **dict(self.params)}


def prepare(point: Point) -> None:
    """The common ``setup`` step: fix threads, check device and kernel (raise NotImplementedError)."""
    torch.set_num_threads(THREADS)
    require_device(point.device)
    kernel = require_kernel(point.kernel, point.op)
    reasons = kernel.unsupported_reasons(_case(point).problem(), dict(point.params))
    if reasons:
        raise NotImplementedError("; ".join(reasons))


@functools.lru_cache(maxsize=8)
def _case(point: Point) -> Any:
    """The :class:`ditbench.measure.cases.Case` of ``point`` (experiment "bench")."""
    from ditbench.measure.cases import Case

    return Case(
        experiment="bench", kernel=point.kernel, op=point.op, n=point.n, m=point.n, d=point.d, dv=point.d,
        bound=point.bound, bound_spec=repr(point.bound), scale=scale_for(point.d), scale_spec="1/d",
        params=point.params, dtype=DTYPE, device=point.device, seed=SEED, threads=THREADS,
    )


@functools.lru_cache(maxsize=4)
def inputs(point: Point) -> tuple[torch.Tensor, ...]:
    """Seeded inputs of ``point`` from ditbench.measure (cached: built once per process).

    forward: ``q, k (n, d) ~ U[−B, B]``, ``v (n, d) ~ U[−1, 1]``; backward: ``a1, a2, a3, x, y, e``
    (see :mod:`ditbench.measure.families.attention`). dtype :data:`DTYPE`, on ``point.device``.
    """
    from ditbench.measure.families import attention

    return tuple(attention.make_inputs(_case(point)))


def call(point: Point) -> Callable[[], Any]:
    """A zero-argument function running the kernel once on the cached inputs (synchronised on CUDA).

    Build it in ``setup``; the ``time_*`` body is then exactly one call of it.
    """
    kernel = KERNELS[point.kernel]
    args = inputs(point)
    kwargs = dict(point.params)
    scale = scale_for(point.d)
    if point.device == "cuda":
        def run() -> Any:
            out = kernel(*args, scale=scale, **kwargs)
            torch.cuda.synchronize()
            return out
        return run
    return functools.partial(kernel, *args, scale=scale, **kwargs)


def errors(point: Point) -> dict[str, float | int]:
    """DESIGN §2 error metrics of one kernel call against the float64 exact reference (ditbench.measure)."""
    from ditbench.measure.families import attention
    from ditbench.measure.workloads import error_metrics

    check = attention.check(_case(point), inputs(point))
    return error_metrics(call(point)(), check)


##################################################################################################
# Empirical exponents: a small sweep timed with torch.utils.benchmark, fitted by ditbench.fit
##################################################################################################
@dataclass(frozen=True)
class Sweep:
    """A small n-sweep for one kernel's exponent (d = 4, B = 1, ~EXPONENT_MIN_RUN_TIME s per size)."""

    op: str  # "forward" | "backward"
    sizes: tuple[int, ...]  # geometric, where the kernel's leading term dominates on a 2-core CPU


# Sizes where each kernel's leading term dominates, measured with CPU time on one thread: exact
# kernels past the cache transition at n ≈ 2^11 (the 2^11 × 2^11 float32 tile no longer fits);
# the polynomial method (eps = 1e-3, d = 4) has a fixed per-call cost that flattens its curve
# (local slopes 0.5–1.6 from 2^13 to 2^20, 0.96 overall), so its fitted k here reads ~0.85–1.0.
# Its grid stops at 2^16 so that a quadratic regression still finishes inside `timeout`
# (an n×n intermediate at 2^18 costs minutes per call and GiBs of memory on this machine).
EXPONENT_SWEEPS: Mapping[str, Sweep] = MappingProxyType({
    "exact": Sweep("forward", (2048, 4096, 8192, 16384)),
    "sdpa": Sweep("forward", (2048, 4096, 8192, 16384)),
    "polynomial": Sweep("forward", (4096, 8192, 16384, 32768, 65536)),
    "uniform": Sweep("forward", (8192, 32768, 131072, 524288)),
    "exact_gradient": Sweep("backward", (256, 512, 1024, 2048)),
    "lowrank_gradient": Sweep("backward", (2048, 4096, 8192, 16384)),
    "polynomial_autograd_gradient": Sweep("backward", (2048, 4096, 8192, 16384)),
})
EXPONENT_D = 4
EXPONENT_BOUND = 1.0
EXPONENT_MIN_RUN_TIME = 0.2  # seconds of timing per size


def exponent_points(kernel: str, device: str) -> tuple[Point, ...]:
    """The points of ``kernel``'s exponent sweep (d = 4, B = 1)."""
    if kernel not in EXPONENT_SWEEPS:
        raise ValueError(f"kernel {kernel!r} has no exponent sweep; kernels with one: {sorted(EXPONENT_SWEEPS)}")
    sweep = EXPONENT_SWEEPS[kernel]
    return tuple(Point.of(kernel, sweep.op, n, EXPONENT_D, EXPONENT_BOUND, device) for n in sweep.sizes)


def fastest_call_seconds(point: Point, *, min_run_time: float = EXPONENT_MIN_RUN_TIME) -> float:
    """Fastest per-call seconds among the blocks of ``torch.utils.benchmark.Timer.blocked_autorange``,
    on the device's clock (:data:`TIMERS`: CPU time on CPU).

    The minimum, not the median: on a shared machine other processes only ever add time, so the
    fastest block is the best estimate of the kernel's own cost, and it is what keeps a fitted
    exponent stable when neighbours load the cores (docs/benchmarks.md has the measured spread).
    """
    timer = benchmark.Timer(stmt="fn()", globals={"fn": call(point)}, num_threads=THREADS,
                            timer=TIMERS[point.device])
    return float(min(timer.blocked_autorange(min_run_time=min_run_time).times))


def fitted_exponent(points: tuple[Point, ...]) -> Any:
    """Time every point and fit t = e^a·n^k with ditbench.fit: a power-law fit (``.exponent``, CI)."""
    from ditbench.fit import fit_power_law

    sizes, seconds = [], []
    for point in points:
        seconds.append(fastest_call_seconds(point))
        sizes.append(point.n)
        inputs.cache_clear()  # free this size's tensors before the next, larger one
    return fit_power_law(sizes, seconds)


##################################################################################################
# asv bookkeeping: skip CUDA without spawning, and a version that follows the settings above
##################################################################################################
# Probed once at import. asv spawns one process per benchmark just to learn that its setup raises
# NotImplementedError; on a CPU-only runner that was a fifth of a publish (issue 13). Benchmarks
# marked with `skip_without_cuda` are dropped at discovery instead. The probe asks NVML, not the
# CUDA runtime (torch: "will NOT poison fork if PYTORCH_NVML_BASED_CUDA_CHECK=1"), so a process that
# imports this suite and then forks benchmark processes (asv's forkserver, `tox -e bench-publish`)
# has not initialised CUDA before the fork; where NVML is unusable torch falls back to the runtime.
def _cuda_present() -> bool:
    previous = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    try:
        return torch.cuda.is_available()
    finally:
        if previous is None:
            del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
        else:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = previous


HAS_CUDA = _cuda_present()
AVAILABLE_DEVICES = tuple(device for device in DEVICES if device == "cpu" or HAS_CUDA)


def skip_without_cuda(method: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``method`` so asv's discovery drops it on a machine without CUDA: the attribute that
    ``asv_runner.benchmarks.mark.skip_benchmark_if`` sets (asv_runner.discovery skips such
    functions before any process runs them). Decorate a method defined in the CUDA class itself,
    never one it shares with a CPU class."""
    if not HAS_CUDA:
        method.skip_benchmark = True  # type: ignore[attr-defined]
    return method


def _settings_version() -> str:
    """A digest of every setting above that changes what a benchmark measures (threads, dtype,
    seed, each device's clock, the logit scale, kernel parameters, exponent sweeps): asv's
    ``version`` attribute, so a change here starts a new series instead of joining incomparable
    numbers on one dashboard line."""
    import hashlib

    clocks = sorted((device, f"{fn.__module__}.{fn.__qualname__}") for device, fn in TIMERS.items())
    settings = (THREADS, DTYPE, SEED, clocks, [scale_for(d) for d in (1, 4, 8, 64)],
                sorted((k, sorted(v.items())) for k, v in KERNEL_PARAMS.items()),
                sorted(EXPONENT_SWEEPS.items()), EXPONENT_D, EXPONENT_BOUND, EXPONENT_MIN_RUN_TIME)
    return hashlib.sha1(repr(settings).encode()).hexdigest()[:12]


SETTINGS_VERSION = _settings_version()
