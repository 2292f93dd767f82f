"""Cost-model skips: predicted seconds from the measured rate, predicted bytes against free memory."""
from __future__ import annotations

from types import MappingProxyType

import pytest

from ditbench import theory
from ditbench.attention import KERNELS, Kernel, uniform_attention
from ditbench.measure import SweepSpec, expand
from ditbench.measure.budget import Rates, available_memory, budget_reasons, calibrate, measurement_bytes


def one_case(kernel: str, n: int = 1024, **extra):
    return expand(SweepSpec.from_dict({"experiment": "B", "kernels": [kernel], "n": [n], "d": [8]} | extra),
                  threads=1)[0]


@pytest.fixture
def sized_kernel(monkeypatch):
    """A kernel whose cost model says 1e9 FLOP and `bytes` param bytes."""
    def cost(problem, params):
        return theory.Cost(flops=1e9, bytes=float(params["bytes"]))

    kernel = Kernel(name="fake_sized", fn=lambda q, k, v, *, scale=None, bytes=0: uniform_attention(q, k, v),
                    params=MappingProxyType({"bytes": 0}), cost=cost)
    monkeypatch.setitem(KERNELS, "fake_sized", kernel)
    return kernel


def test_time_budget_uses_flops_over_rate(sized_kernel):
    case = one_case("fake_sized", time_budget_s=2.0)
    assert budget_reasons(case, Rates(1e9, "assumed"), memory_available=1e15) == []  # 1 s ≤ 2 s
    (reason,) = budget_reasons(case, Rates(1e8, "assumed"), memory_available=1e15)  # 10 s > 2 s
    assert reason.startswith("predicted 10 s per call (1e+09 FLOP at 1e+08 FLOP/s, assumed)")
    assert reason.endswith("exceeds the time budget of 2 s")


def test_memory_budget_counts_kernel_and_measurement_bytes(sized_kernel):
    fits = one_case("fake_sized", params={"bytes": [0]}, memory_fraction=0.5)
    base = measurement_bytes(fits)
    # Inputs and output in float32 plus their float64 copies, and two 2^22-element float64 tiles.
    assert base == (1024 * 8 * 3 + 1024 * 8) * (4 + 8) + 2 * 2**22 * 8
    assert budget_reasons(fits, Rates(1e12, "assumed"), memory_available=2 * base) == []
    big = one_case("fake_sized", params={"bytes": [2**30]}, memory_fraction=0.5)
    (reason,) = budget_reasons(big, Rates(1e12, "assumed"), memory_available=2 * base)
    assert "exceeds the memory budget" in reason and "(0.5 of" in reason


def test_real_exact_cost_and_machine_probes():
    case = one_case("exact", n=1 << 20)  # 2^40 logits: far beyond any time budget
    (reason,) = budget_reasons(case, Rates(1e11, "assumed"), memory_available=1e15)
    assert "exceeds the time budget" in reason
    rates = calibrate("cpu", threads=1)
    assert rates.method == "measured" and 1e6 < rates.flops_per_s < 1e13
    assert 0 < available_memory("cpu")
