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


def test_the_fused_polynomial_is_predicted_at_its_own_rate():
    # Its cost carries rate "fused": the exact kernel's rate (exp-bound) over-predicted it ~26×.
    fused_cost = theory.polynomial_forward_cost(2**17, 2**17, 8, 8, 4, fused=True, virtual_top=True)
    assert fused_cost.rate == "fused" and theory.polynomial_forward_cost(2**17, 2**17, 8, 8, 4).rate == "exact"
    both = Rates(1e9, "measured", (1e9,), fused_flops_per_s=4e10, fused_samples=(4e10,))
    assert both.rate("fused") == 4e10 and both.rate("exact") == 1e9
    assert both.seconds(8e10, "fused") == 2.0 and both.seconds(8e10) == 80.0
    assert Rates(1e9, "assumed").rate("fused") == 1e9  # not measured: the conservative exact rate
    with pytest.raises(ValueError, match="not one of"):
        both.rate("gpu")


def test_budget_fields_name_the_rate_each_prediction_used(monkeypatch):
    from ditbench.attention import polynomial
    from ditbench.measure.budget import budget_fields

    monkeypatch.setattr(polynomial, "_impl", lambda p, params: "fused")  # as where the extension builds
    case = one_case("polynomial", n=4096, params={"eps": [1e-3]}, bound=[1], scale="1/d")
    rates = Rates(1e9, "measured", (1e9,), fused_flops_per_s=5e10, fused_samples=(5e10,))
    row = budget_fields(case, rates, 1e15)
    cost = KERNELS["polynomial"].predicted_cost(case.problem(), dict(case.params))
    assert cost.rate == "fused" and row["call_rate_flops_per_s"] == 5e10 and row["rate_flops_per_s"] == 1e9
    assert row["predicted_s"] == pytest.approx(cost.flops / 5e10)
    exact = budget_fields(one_case("exact", n=4096), rates, 1e15)
    assert exact["call_rate_flops_per_s"] == 1e9


def test_calibration_measures_the_fused_kernel_where_it_builds():
    from ditbench.attention import fused

    rates = calibrate("cpu", threads=1, repeats=1)
    if not fused.available():
        assert rates.fused_flops_per_s is None and rates.fused_samples == ()
        pytest.skip(f"fused kernel: {fused.unavailable_reason()}")
    assert len(rates.fused_samples) == 1 and rates.fused_flops_per_s == rates.fused_samples[0] > 0
