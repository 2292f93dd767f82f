"""Workloads: seeded inputs, error metrics against hand-computed values, the row-subset reference,
and the uniform-attention gradient baseline."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.measure import SweepSpec, expand
from ditbench.measure.families.attention import forward_check, forward_inputs, uniform_gradient
from ditbench.measure.workloads import Check, error_metrics, reference_rows
from conftest import reference_attention
from tolerances import assert_close, gamma, softmax_attention_bound, unit_roundoff

U64 = unit_roundoff(torch.float64)


def case(n=64, m=None, d=4, dv=3, bound=2.0, ref_rows=1024, seed=5, dtype="float64"):
    raw = {"experiment": "W", "kernels": ["exact"], "n": [n], "d": [d], "dv": [dv], "bound": [bound],
           "scale": ["1/d"], "ref_rows": ref_rows, "seeds": [seed], "dtype": [dtype]}
    if m is not None:
        raw["m"] = [m]
    return expand(SweepSpec.from_dict(raw), threads=1)[0]


def test_error_metrics_against_hand_computed_values():
    out = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    check = Check(rows=None, reference=torch.tensor([[1.0, 2.5], [3.0, 3.0]], dtype=torch.float64),
                  uniform=torch.tensor([[1.5, 3.0]], dtype=torch.float64), rel_scale=2.0)
    got = error_metrics(out, check)
    # |out − ref| = [[0, .5], [0, 1]]; |uniform − ref| = [[.5, .5], [1.5, 0]]
    assert got["err_max"] == 1.0
    assert got["err_max_rel"] == 0.5
    # Two Frobenius norms of ≤ 4 entries (sum of squares γ_4, a square root u, on each side) and a
    # division on each side; err_vs_uniform is one division on each side. The other values are exact.
    assert got["err_fro_rel"] == pytest.approx(math.sqrt(1.25) / math.sqrt(1 + 6.25 + 9 + 9),
                                               rel=2 * (gamma(4) + 3 * U64))
    assert got["err_uniform"] == 1.5
    assert got["err_vs_uniform"] == pytest.approx(1 / 1.5, rel=2 * U64)
    assert (got["nonfinite"], got["ref_rows"]) == (0, 2)


def test_error_metrics_on_a_row_subset_and_with_non_finite_output():
    out = torch.arange(8.0).reshape(4, 2)  # rows 1 and 3 are [2, 3] and [6, 7]
    out[0, 0] = float("nan")  # outside the subset: counted, but not in err_max
    check = Check(rows=torch.tensor([1, 3]), reference=torch.tensor([[2.0, 3.0], [6.0, 6.5]], dtype=torch.float64),
                  uniform=torch.zeros(1, 2, dtype=torch.float64), rel_scale=1.0)
    got = error_metrics(out, check)
    # err_uniform: the uniform answer 0 against the reference's largest entry 6.5.
    assert (got["err_max"], got["nonfinite"], got["ref_rows"], got["err_uniform"]) == (0.5, 1, 2, 6.5)
    out[3, 1] = float("inf")  # inside: infinitely wrong, never NaN
    got = error_metrics(out, check)
    assert got["err_max"] == math.inf and got["err_vs_uniform"] == math.inf and got["err_fro_rel"] == math.inf
    assert not any(isinstance(v, float) and math.isnan(v) for v in got.values())


def test_error_metrics_zero_over_zero_is_zero_not_nan():
    ref = torch.ones(3, 2, dtype=torch.float64)
    got = error_metrics(ref.clone(), Check(rows=None, reference=ref, uniform=ref[:1], rel_scale=1.0))
    assert got["err_max"] == 0.0 and got["err_vs_uniform"] == 0.0


def test_inputs_are_seeded_bounded_and_identical_across_dtypes():
    c64, c32 = case(dtype="float64"), case(dtype="float32")
    q, k, v = forward_inputs(c64)
    assert (q.shape, k.shape, v.shape) == ((64, 4), (64, 4), (64, 3))
    assert q.abs().max() <= 2.0 and v.abs().max() <= 1.0
    assert q.abs().max() > 1.5  # really U[−2, 2], not U[−1, 1]
    assert all(torch.equal(a, b) for a, b in zip(forward_inputs(c64), (q, k, v)))
    assert all(torch.equal(a.float(), b) for a, b in zip((q, k, v), forward_inputs(c32)))
    assert not torch.equal(forward_inputs(case(seed=6))[0], q)


def test_reference_rows_are_a_seeded_subset():
    assert reference_rows(100, 100, seed=0) is None and reference_rows(100, 500, seed=0) is None
    rows = reference_rows(1000, 50, seed=3)
    assert rows.shape == (50,) and rows.unique().numel() == 50 and bool((rows[1:] > rows[:-1]).all())
    assert torch.equal(rows, reference_rows(1000, 50, seed=3))
    assert not torch.equal(rows, reference_rows(1000, 50, seed=4))


def test_full_reference_matches_dense_softmax_and_subset_matches_full():
    full_case = case(n=96, m=80, ref_rows=10_000)
    inputs = forward_inputs(full_case)
    full = forward_check(full_case, inputs)
    assert full.rows is None and full.reference.shape == (96, 3)
    dense = reference_attention(*inputs, scale=full_case.scale)
    # Two float64 softmax evaluations, each within the worst-case rounding bound.
    tol = 2 * softmax_attention_bound(*(x.double() for x in inputs), full_case.scale, torch.float64)
    assert_close(full.reference, dense, atol=tol, what="full reference vs dense")
    sub_case = case(n=96, m=80, ref_rows=17)
    sub = forward_check(sub_case, inputs)
    assert sub.rows.shape == (17,) and sub.reference.shape == (17, 3)
    assert_close(sub.reference, full.reference[sub.rows], atol=tol, what="row subset vs full")
    assert torch.equal(sub.uniform, full.uniform) and sub.rel_scale == full.rel_scale
    # Subset = every row gives the same metrics as the full reference.
    out = inputs[2].new_zeros(96, 3) + 0.1
    everything = Check(rows=torch.arange(96), reference=full.reference, uniform=full.uniform, rel_scale=full.rel_scale)
    assert error_metrics(out, everything) == error_metrics(out, full)


def test_uniform_gradient_is_the_true_gradient_where_attention_is_uniform(gen):
    # At X = 0 every logit is 0, so f = 11ᵀ/n exactly and autograd of L gives the uniform baseline.
    n, d, s = 23, 5, 0.37
    a1, a2, a3, e = (torch.rand(n, d, generator=gen, dtype=torch.float64) * 2 - 1 for _ in range(4))
    y = torch.rand(d, d, generator=gen, dtype=torch.float64)
    x = torch.zeros(d, d, dtype=torch.float64, requires_grad=True)
    f = torch.softmax(s * a1 @ x @ a2.T, dim=-1)  # (n, n)
    loss = 0.5 * ((f @ a3 @ y - e) ** 2).sum()
    (grad,) = torch.autograd.grad(loss, x)
    got = uniform_gradient(a1, a2, a3, x.detach(), y, e, scale=s)
    # f = 11ᵀ/n exactly, so both compute G = s·A1ᵀ p A2 with p_ij = (c_i·h_j − c_i·h̄)/n (c = 1h̄ᵀ − E,
    # h = A3·Y), in different orders. Each is within γ_k·Σ|terms| of the exact value, with
    # Σ|terms| ≤ (s/n)·(|A1|ᵀ|c|)·((|h| + |h̄|)ᵀ|A2|) and k ≤ n²·d + 4 roundings along any chain.
    h = a3 @ y  # (n, d)
    c = h.mean(0, keepdim=True) - e  # (n, d)
    terms = s / n * (a1.abs().T @ c.abs()) @ ((h.abs() + h.mean(0).abs()).T @ a2.abs())  # (d, d)
    assert_close(got, grad, atol=2 * gamma(n * n * d + 4) * terms, what="uniform gradient vs autograd")
