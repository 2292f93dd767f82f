"""pytest-benchmark: attention forward, seconds per call (groups "forward n=…").

Short mode (CI): ``-m "not large" --benchmark-max-time=0.1 --benchmark-min-rounds=3``.
"""
from __future__ import annotations

import pytest

from benchmarks import common

KERNELS = ("exact", "sdpa", "polynomial", "uniform")
DEVICES = tuple(pytest.param(dev, marks=pytest.mark.benchmark(timer=common.TIMERS[dev])) for dev in common.DEVICES)
SIZES = (1024, *(pytest.param(n, marks=pytest.mark.large) for n in (2048, 4096)))  # ≥ 3 sizes: fit-able


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n", SIZES)
def test_forward(measure, n: int, kernel: str, device: str) -> None:
    measure(common.Point.of(kernel, "forward", n, d=8, bound=1.0, device=device))
