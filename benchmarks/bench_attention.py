"""asv benchmarks: attention forward (DESIGN §4 E1–E3), in the numpy/scipy style.

One class per question: how long one call takes (``Forward``), how much memory it needs
(``ForwardMemory``), how accurate it is against the float64 exact reference (``ForwardAccuracy``),
and how its time grows with n (``ForwardExponent``). Inputs are built in ``setup`` through
cached getters (:mod:`benchmarks.common`); unsupported or not-yet-landed combinations raise
``NotImplementedError`` there and show as skipped.

Run: ``asv run --python=same --quick -b bench_attention`` (see docs/benchmarks.md).
"""
from __future__ import annotations

from . import common

KERNELS = ("exact", "sdpa", "polynomial", "uniform")
PARAM_NAMES = ("n", "d", "bound", "kernel", "device")


class Forward:
    """Seconds per forward call, q, k, v of shape (n, d), float32, 1/d scale, entries U[−B, B]."""

    params = ((1024, 4096), (8,), (1.0,), KERNELS, ("cpu",))
    param_names = PARAM_NAMES
    timer = common.TIMERS["cpu"]  # CPU time: see common.TIMERS
    # 3–10 samples, at most 3 s of samples per process (asv runs 2 processes per commit).
    repeat = (3, 10, 3.0)
    warmup_time = 0.1
    timeout = 120

    def setup(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        point = common.Point.of(kernel, "forward", n, d, bound, device)
        common.prepare(point)
        self.run = common.call(point)

    def time_forward(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        self.run()


class ForwardCUDA(Forward):
    """As :class:`Forward` on CUDA: wall clock around a synchronised call (skipped without a GPU)."""

    params = Forward.params[:-1] + (("cuda",),)
    timer = common.TIMERS["cuda"]


class ForwardCUDAEvents:
    """CUDA device time (median of CUDA-event timings, L2 flushed between calls, as
    triton.testing.do_bench(return_mode="median"); ditbench.measure.timing.cuda_event_timing) and
    peak CUDA memory of one call, for the GPU kernels against SDPA (skipped without a GPU)."""

    params = ((4096, 65536), (8, 64), (1.0,), ("polynomial_triton", "polynomial", "sdpa"), ("cuda",))
    param_names = PARAM_NAMES
    timeout = 300

    def setup(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        point = common.Point.of(kernel, "forward", n, d, bound, device)
        common.prepare(point)
        self.run = common.call(point)

    def track_cuda_event_seconds(self, n: int, d: int, bound: float, kernel: str, device: str) -> float:
        from ditbench.measure.timing import cuda_event_timing

        return cuda_event_timing(self.run, min_run_time=0.2).median_s

    track_cuda_event_seconds.unit = "seconds"  # type: ignore[attr-defined]

    def track_cuda_peak_bytes(self, n: int, d: int, bound: float, kernel: str, device: str) -> float:
        from ditbench.measure.memory import measure_peak

        return float(measure_peak(self.run, "cuda")[1] or 0)

    track_cuda_peak_bytes.unit = "bytes"  # type: ignore[attr-defined]


class ForwardSweep(Forward):
    """As :class:`Forward` over a geometric n grid (E1 at d = 8, B = 1), for the dashboard and for
    ``ditbench fit .asv/results`` (which needs ≥ 3 sizes per kernel). Not in the regression subset."""

    params = ((1024, 2048, 4096, 8192), (8,), (1.0,), KERNELS, ("cpu",))
    repeat = (3, 5, 3.0)


class ForwardMemory:
    """Peak resident memory (bytes) of a process holding the inputs and running one forward call.

    At n = 16384 a materialised n×n float32 logit matrix alone is 1 GiB: the streamed kernels
    must stay far below that (exact: one 2^22-logit tile; polynomial: O((n + m)·d + r·dv)).
    """

    params = ((16384,), (8,), (1.0,), ("exact", "sdpa", "polynomial"), ("cpu",))
    param_names = PARAM_NAMES
    timeout = 120

    def setup(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        point = common.Point.of(kernel, "forward", n, d, bound, device)
        common.prepare(point)
        self.run = common.call(point)

    def peakmem_forward(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        self.run()


class ForwardAccuracy:
    """err_max = ‖T − Att‖_max against the float64 exact reference (DESIGN §2), at B = 1 and 2."""

    params = ((4096,), (8,), (1.0, 2.0), ("sdpa", "polynomial", "uniform"), ("cpu",))
    param_names = PARAM_NAMES
    timeout = 120

    def setup(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        self.point = common.Point.of(kernel, "forward", n, d, bound, device)
        common.prepare(self.point)

    def track_err_max(self, n: int, d: int, bound: float, kernel: str, device: str) -> float:
        return float(common.errors(self.point)["err_max"])

    track_err_max.unit = "err"  # type: ignore[attr-defined]


class ForwardExponent:
    """Fitted k of t ≈ e^a·n^k over a small sweep (sizes in common.EXPONENT_SIZES), d = 4, B = 1.

    ~1 for the polynomial method and uniform, ~2 for exact kernels: a jump of the polynomial
    method toward 2 means an n×n intermediate crept in.
    """

    params = (("exact", "polynomial", "uniform"), common.DEVICES)
    param_names = ("kernel", "device")
    timeout = 300

    def setup(self, kernel: str, device: str) -> None:
        self.points = common.exponent_points(kernel, device)
        for point in self.points:
            common.prepare(point)

    def track_exponent_forward(self, kernel: str, device: str) -> float:
        return float(common.fitted_exponent(self.points).exponent)

    track_exponent_forward.unit = "exponent"  # type: ignore[attr-defined]
