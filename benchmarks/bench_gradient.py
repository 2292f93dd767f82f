"""asv benchmarks: the attention-training gradient dL/dX (DESIGN §3.2, §4 E4).

Kernels are the registry's ``op="backward"`` entries, called
``kernel(a1, a2, a3, x, y, e, scale=1/d, **params)`` with a1, a2, a3, e of shape (n, d) and
x, y of shape (d, d); inputs (x = y = I) and the float64 reference come from
:mod:`ditbench.measure.families.attention`. Kernels that are not registered yet show as skipped.

Run: ``asv run --python=same --quick -b bench_gradient`` (see docs/benchmarks.md).
"""
from __future__ import annotations

from . import common

KERNELS = ("exact_gradient", "lowrank_gradient", "polynomial_autograd_gradient")
PARAM_NAMES = ("n", "d", "bound", "kernel", "device")


class Gradient:
    """Seconds per gradient call, n tokens, head dim d, entries of a1, a2 in U[−B, B], float32."""

    version = common.SETTINGS_VERSION  # settings in common.py: a change starts a new series
    params = ((512, 2048), (4,), (1.0,), KERNELS, ("cpu",))
    param_names = PARAM_NAMES
    timer = common.TIMERS["cpu"]  # CPU time: see common.TIMERS
    repeat = (3, 10, 3.0)  # as bench_attention.Forward
    warmup_time = 0.1
    timeout = 120

    def setup(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        point = common.Point.of(kernel, "backward", n, d, bound, device)
        common.prepare(point)
        self.run = common.call(point)

    def time_gradient(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        self.run()


class GradientCUDA(Gradient):
    """As :class:`Gradient` on CUDA: wall clock around a synchronised call (skipped without a GPU)."""

    version = common.SETTINGS_VERSION  # settings in common.py: a change starts a new series
    params = Gradient.params[:-1] + (("cuda",),)
    timer = common.TIMERS["cuda"]

    @common.skip_without_cuda  # its own method: Gradient's time_gradient must stay
    def time_gradient(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        self.run()


class GradientAccuracy:
    """err_max of dL/dX (d×d) against the float64 closed form/autograd reference, at B = 1 and 2."""

    version = common.SETTINGS_VERSION  # settings in common.py: a change starts a new series
    params = ((1024,), (4,), (1.0, 2.0), KERNELS, ("cpu",))
    param_names = PARAM_NAMES
    timeout = 120

    def setup(self, n: int, d: int, bound: float, kernel: str, device: str) -> None:
        self.point = common.Point.of(kernel, "backward", n, d, bound, device)
        common.prepare(self.point)

    def track_err_max(self, n: int, d: int, bound: float, kernel: str, device: str) -> float:
        return float(common.errors(self.point)["err_max"])

    track_err_max.unit = "err"  # type: ignore[attr-defined]


class GradientExponent:
    """Fitted k of t ≈ e^a·n^k over the sweep in common.EXPONENT_SWEEPS (d = 4, B = 1)."""

    version = common.SETTINGS_VERSION  # settings in common.py: a change starts a new series
    params = (KERNELS, common.AVAILABLE_DEVICES)  # cuda only where it exists
    param_names = ("kernel", "device")
    timeout = 300

    def setup(self, kernel: str, device: str) -> None:
        self.points = common.exponent_points(kernel, device)
        for point in self.points:
            common.prepare(point)

    def track_exponent_gradient(self, kernel: str, device: str) -> float:
        return float(common.fitted_exponent(self.points).exponent)

    track_exponent_gradient.unit = "exponent"  # type: ignore[attr-defined]
