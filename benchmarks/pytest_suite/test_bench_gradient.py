"""pytest-benchmark: attention-training gradient dL/dX, seconds per call (groups "backward n=…").

Short mode (CI): ``-m "not large" --benchmark-max-time=0.1 --benchmark-min-rounds=3``.
"""
from __future__ import annotations

import pytest

from benchmarks import common

KERNELS = ("exact_gradient", "lowrank_gradient", "polynomial_autograd_gradient")
DEVICES = tuple(pytest.param(dev, marks=pytest.mark.benchmark(timer=common.TIMERS[dev])) for dev in common.DEVICES)
SIZES = (512, *(pytest.param(n, marks=pytest.mark.large) for n in (1024, 2048)))  # ≥ 3 sizes: fit-able


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n", SIZES)
def test_gradient(measure, n: int, kernel: str, device: str) -> None:
    measure(common.Point.of(kernel, "backward", n, d=4, bound=1.0, device=device))
