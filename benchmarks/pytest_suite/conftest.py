"""pytest-benchmark suite: fixtures shared by ``test_bench_*.py``.

Each test measures one :class:`benchmarks.common.Point` with the ``measure`` fixture, which
- skips when the point cannot run here (``NotImplementedError`` from :func:`common.prepare`:
  no GPU, kernel not registered),
- groups results by operation and size (``benchmark.group = "forward n=4096"``), so the
  comparison table and ``--benchmark-compare-fail`` compare like with like,
- records every column of the point (kernel, op, n, d, bound, scale, dtype, device, threads,
  seed, kernel params) and its err_max in ``extra_info``, where ``ditbench fit`` reads them.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks import common


@pytest.fixture
def measure(benchmark) -> Callable[[common.Point], None]:
    """Return ``run(point)``: time one kernel call per round on ``point``'s cached inputs."""

    def run(point: common.Point) -> None:
        try:
            common.prepare(point)
            fn = common.call(point)
            errors = common.errors(point)
        except NotImplementedError as err:
            pytest.skip(str(err))
        benchmark.group = f"{point.op} n={point.n}"
        benchmark.extra_info.update(point.columns())
        benchmark.extra_info["err_max"] = float(errors["err_max"])
        benchmark.extra_info["err_uniform"] = float(errors["err_uniform"])
        benchmark(fn)

    return run
