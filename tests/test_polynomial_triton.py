"""polynomial_triton: registry refusals here, and correctness on CPU through Triton's interpreter.

TRITON_INTERPRET=1 must be set before triton is imported, so the interpreter cases run in a
subprocess (tests/triton_interpret_cases.py) that writes its inputs and outputs to a file; this
process compares them with float64 exact attention. Tolerance, as tests/test_polynomial.py: the
exact-arithmetic bound 2ε/(1+√(1−ε²))·‖V‖_max (theory.output_error_bound) at the realised ε of
the polynomial that ran plus the worst-case float32 rounding term theory.rounding_error_bound.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import reference_attention
from ditbench import theory
from ditbench.attention import KERNELS, Problem
from ditbench.attention import polynomial_triton as pt
from ditbench.attention.features import monomial_table, raw_monomials
from ditbench.expapprox import exp_approx, minimal_approx

HERE = Path(__file__).resolve().parent
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")


def test_registry_refuses_non_cuda_and_out_of_range_shapes_with_reasons():
    kernel = KERNELS["polynomial_triton"]
    ok = Problem(n=4096, m=4096, d=8, dv=8, dtype=torch.float32, device="cuda", bound=1.0, scale=1 / 8)
    assert kernel.unsupported_reasons(ok) == []
    cpu = kernel.unsupported_reasons(Problem(n=64, m=64, d=8, dv=8, bound=1.0, scale=1 / 8))
    assert any("supports devices ['cuda'], not cpu" in r for r in cpu)
    wide = kernel.unsupported_reasons(Problem(n=64, m=64, d=65, dv=80, device="cuda", bound=0.1, scale=1 / 65))
    assert any("d ≤ 64, not d=65" in r for r in wide) and any("dv ≤ 64, not dv=80" in r for r in wide)
    f64 = kernel.unsupported_reasons(Problem(n=64, m=64, d=8, dv=8, dtype=torch.float64, device="cuda", bound=1.0))
    assert any("float32" in r for r in f64)
    deep = kernel.unsupported_reasons(ok, {"degree": 13})
    assert any("up to degree 12" in r for r in deep)
    assert kernel.describe(ok, kernel.resolved_params({}))["impl"] == "triton"
    g = theory.degree_for(ok.radius_bound(), 1e-3)
    assert kernel.predicted_cost(ok).flops == theory.polynomial_forward_cost(4096, 4096, 8, 8, g, fused=True).flops


def test_cpu_tensors_without_the_interpreter_are_refused():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("this process runs Triton's interpreter")
    q = torch.rand(4, 3)
    with pytest.raises(ValueError, match="runs on CUDA tensors, not cpu.*TRITON_INTERPRET=1"):
        pt.polynomial_triton_attention(q, q, q)


@pytest.mark.parametrize("d, degree", [(3, 0), (3, 1), (4, 3), (8, 4), (2, 9)])
def test_index_table_products_are_the_monomials(d, degree):
    x = torch.rand(d, 5, dtype=torch.float64)  # (d, tokens)
    idx = torch.as_tensor(pt.index_table(d, degree)).long()  # (r, G)
    padded = torch.cat([x, torch.ones(1, 5, dtype=torch.float64)])  # coordinate d loads as 1
    products = padded[idx].prod(dim=1)  # (r, tokens)
    assert torch.equal(products, raw_monomials(x, monomial_table(d, degree)))


@needs_triton
@pytest.mark.slow
def test_interpreter_matches_float64_within_the_bound(tmp_path):
    out_file = tmp_path / "cases.pt"
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(
        [str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(HERE / "triton_interpret_cases.py"), str(out_file)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cases = torch.load(out_file)
    assert len(cases) >= 5
    for case in cases:
        q, k, v, out, scale = case["q"], case["k"], case["v"], case["out"], case["scale"]
        assert out.shape == torch.broadcast_shapes(q.shape[:-1], v.shape[:-2] + (1,)) + (v.shape[-1],)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        r = theory.logit_radius(q, k, scale) if case["radius"] is None else case["radius"]
        approx = minimal_approx(r, case["eps"]) if case["degree"] is None else exp_approx(r, case["degree"])
        v_max = v.abs().max().item()
        tol = theory.output_error_bound(approx.relative_error, v_max) + theory.rounding_error_bound(
            torch.finfo(torch.float32).eps / 2, k.shape[-2], q.shape[-1], approx.degree, approx.condition(), v_max)
        err = (out.double() - reference_attention(q, k, v, scale)).abs().max().item()
        assert err <= tol, f"{case['name']}: err {err:.3g} > tolerance {tol:.3g}"
        if case["name"] == "far from uniform":  # not vacuous: the uniform answer is far outside
            uniform = (v.double().mean(-2, keepdim=True) - reference_attention(q, k, v, scale)).abs().max().item()
            assert uniform > 2 * tol


@pytest.mark.parametrize("construction", ["minimax", "chebyshev"])
def test_describe_on_inputs_is_the_torch_kernels_selection(construction):
    """One degree selection for every polynomial kernel: on the same inputs the Triton hook names
    the degree, rank and radius the torch kernel's hook names (realised radius, not B²·scale·d)."""
    gen = torch.Generator().manual_seed(12)
    q, k, v = (torch.rand(64, 4, generator=gen) * 4 - 2 for _ in range(3))  # U[−2, 2]
    p = Problem(n=64, m=64, d=4, dv=4, device="cuda", bound=2.0, scale=0.5)
    own = {"construction": construction}
    ours = KERNELS["polynomial_triton"].describe(p, KERNELS["polynomial_triton"].resolved_params(own), (q, k, v))
    torch_p = Problem(n=64, m=64, d=4, dv=4, bound=2.0, scale=0.5)
    theirs = KERNELS["polynomial"].describe(torch_p, KERNELS["polynomial"].resolved_params(own), (q, k, v))
    for key in ("degree", "rank", "radius", "approx_error", "err_bound"):
        assert ours[key] == theirs[key], key
    assert ours["rounding_bound"] > 0  # float32 term on these inputs (its tile depth is the Triton kernel's)
    assert ours["radius"] < p.radius_bound()  # the realised radius, below the worst case scale·d·B²
