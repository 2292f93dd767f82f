"""The error taxonomy (ditbench.errors): a refusal ("unsupported here, with a reason") is a
skipped row; anything else a kernel raises, a bug included, is a failed row; a non-positive
normaliser is reported one way by every kernel that divides by one."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.attention import KERNELS, Kernel, Problem, polynomial_attention
from ditbench.attention.peers import NormaliserError as PeerNormaliserError
from ditbench.attention.peers import performer_attention
from ditbench.errors import KernelRefusal, NormaliserError, check_normalisers
from ditbench.gradient import lowrank_gradient
from ditbench.measure import InProcessExecutor, Preset, SweepSpec, run_sweep
from ditbench.measure.budget import Rates


def test_refusal_is_a_value_error_and_a_normaliser_error_is_arithmetic():
    assert issubclass(KernelRefusal, ValueError)  # callers that catch ValueError keep working
    assert issubclass(NormaliserError, FloatingPointError) and not issubclass(NormaliserError, ValueError)
    assert PeerNormaliserError is NormaliserError  # one class, re-exported where peers are


@pytest.mark.parametrize("worst", [0.0, -1e-30, math.nan, math.inf, -math.inf])
def test_check_normalisers_names_kernel_count_and_worst(worst):
    with pytest.raises(NormaliserError, match=r"mine: 3 of 8 row normaliser\(s\) ≤ 0 or non-finite \(worst "):
        check_normalisers(worst, kernel="mine", bad=3, total=8, hint="use float64")
    check_normalisers(1e-300, kernel="mine")  # tiny but positive: fine


def test_kernels_refuse_what_they_do_not_serve():
    with pytest.raises(KernelRefusal, match="needs .* MiB > memory_budget"):
        polynomial_attention(torch.rand(64, 8), torch.rand(64, 8), torch.rand(64, 8), scale=1.0, eps=1e-6,
                             memory_budget=1e4)
    q = torch.rand(4, 3, requires_grad=True)
    with pytest.raises(KernelRefusal, match="impl='fused' cannot run"):
        polynomial_attention(q, q, q, impl="fused")
    a = torch.rand(32, 4, dtype=torch.float64)
    eye = torch.eye(4, dtype=torch.float64)
    with pytest.raises(KernelRefusal, match="not even degree 0 fits|fits, i.e. eps"):
        lowrank_gradient(a, a, a, eye, eye, a, eps=1e-6, memory_budget=10.0)
    with pytest.raises(KernelRefusal, match="peer kernels support dtypes"):
        performer_attention(*(torch.rand(8, 4, dtype=torch.float16) for _ in range(3)), features=4)


def test_bad_arguments_stay_plain_value_errors():
    q = torch.rand(4, 3)
    for bad in (dict(eps=1.5), dict(impl="gpu"), dict(degree=-1)):
        with pytest.raises(ValueError) as err:
            polynomial_attention(q, q, q, **bad)
        assert not isinstance(err.value, KernelRefusal), bad


def test_limits_report_refusals_as_reasons():
    unbounded = Problem(n=64, m=64, d=4, dv=4, dtype=torch.float64, bound=None)
    assert "no entry bound" in KERNELS["polynomial"].unsupported_reasons(unbounded)[0]
    huge = Problem(n=1 << 20, m=1 << 20, d=16, dv=16, dtype=torch.float32, bound=3.0, scale=1 / 16)
    reasons = KERNELS["polynomial"].unsupported_reasons(huge, {"eps": 1e-6})
    assert any("memory_budget" in r or "eps" in r for r in reasons)


def _refuses(q, k, v, *, scale=None):
    raise KernelRefusal("fake_refuses supports nothing here (on purpose)")


def _buggy(q, k, v, *, scale=None):
    raise ValueError("an ordinary bug that happens to be a ValueError")


def test_refusal_is_skipped_and_a_value_error_bug_is_failed(tmp_path, monkeypatch):
    monkeypatch.setitem(KERNELS, "fake_refuses", Kernel(name="fake_refuses", fn=_refuses))
    monkeypatch.setitem(KERNELS, "fake_buggy", Kernel(name="fake_buggy", fn=_buggy))
    spec = SweepSpec.from_dict({"experiment": "R", "kernels": ["fake_refuses", "fake_buggy"], "n": [16], "d": 4,
                                "min_run_time": 0.001, "min_repeats": 2})
    frame = run_sweep(Preset(name="r", specs=(spec,)), tmp_path, threads=1, progress=False,
                      executor=InProcessExecutor(), rates=Rates(flops_per_s=1e9, method="assumed"))
    rows = frame.set_index("kernel")
    assert rows.loc["fake_refuses", "status"] == "skipped"
    assert rows.loc["fake_refuses", "reason"] == "fake_refuses supports nothing here (on purpose)"
    assert rows.loc["fake_buggy", "status"] == "failed"
    assert rows.loc["fake_buggy", "reason"].startswith("ValueError: an ordinary bug")
