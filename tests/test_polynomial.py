"""Polynomial-method attention and its feature maps against float64 references.

Tolerances: the exact-arithmetic guarantee 2ε/(1+√(1−ε²))·‖V‖_max (theory.output_error_bound) plus the
worst-case rounding term theory.rounding_error_bound (γ_N·κ, derived in its docstring) for the
dtype at hand — no tuned constants.
"""
from __future__ import annotations

import math

import pytest
import torch
from conftest import reference_attention
from hypothesis import given
from hypothesis import strategies as st
from tolerances import LIBM_ULPS, assert_close, gamma, max_abs, unit_roundoff

from ditbench.errors import NormaliserError
from ditbench import theory
from ditbench.attention import KERNELS, Problem, fused, polynomial_attention
from ditbench.attention import polynomial as poly_mod
from ditbench.attention.features import (
    PolynomialFeatures,
    monomial_table,
    raw_monomials,
)
from ditbench.expapprox import ExpApprox, exp_approx, minimal_approx


def _inputs(gen, shape_q, shape_k, dv, bound, dtype=torch.float64):
    q = (torch.rand(*shape_q, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    k = (torch.rand(*shape_k, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    v = torch.rand(*shape_k[:-1], dv, generator=gen, dtype=torch.float64) * 2 - 1
    return q.to(dtype), k.to(dtype), v.to(dtype)


def _tolerance(q, k, v, scale, eps, *, radius=None, degree=None) -> float:
    """Exact-arithmetic bound at the realised error of the polynomial used + rounding bound."""
    r = theory.logit_radius(q, k, scale) if radius is None else radius
    approx = minimal_approx(r, eps) if degree is None else exp_approx(r, degree)
    v_max = v.abs().max().item()
    u = torch.finfo(q.dtype).eps / 2
    rounding = theory.rounding_error_bound(u, k.shape[-2], q.shape[-1], approx.degree, approx.condition(), v_max)
    return theory.output_error_bound(approx.relative_error, v_max) + rounding


def _err(out, q, k, v, scale) -> float:
    return (out.double() - reference_attention(q, k, v, scale)).abs().max().item()


# Both implementations answer every accuracy test: the fused C++ kernel (skipped, with the build's
# reason, where it cannot be compiled) and the pure-torch fallback.
IMPLS = pytest.mark.parametrize("impl", [
    pytest.param("fused", marks=pytest.mark.skipif(not fused.available(),
                                                   reason=f"fused kernel: {fused.unavailable_reason()}")),
    "torch",
])


##################################################################################
#                         Accuracy against float64                               #
##################################################################################

@IMPLS
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_broadcast_batch_n_ne_m_dv_ne_d_within_bound(gen, dtype, impl):
    q, k, v = _inputs(gen, (2, 3, 37, 6), (1, 3, 53, 6), 5, bound=1.0, dtype=dtype)
    out = polynomial_attention(q, k, v, scale=0.3, eps=1e-4, impl=impl)
    assert out.shape == (2, 3, 37, 5) and out.dtype == dtype
    err = _err(out, q, k, v, 0.3)
    assert err <= _tolerance(q, k, v, 0.3, 1e-4)
    if dtype == torch.float64:  # not vacuous: the uniform answer is far outside the tolerance
        uniform = v.mean(-2, keepdim=True).expand(2, 3, 37, 5)
        assert (uniform - reference_attention(q, k, v, 0.3)).abs().max().item() > 100 * _tolerance(q, k, v, 0.3, 1e-4)


@IMPLS
def test_paper_setting_float32_matches_bound(gen, impl):
    # The benchmark's setting, scaled down: U[−1, 1], d = dv = 8, scale = 1/d, eps = 1e-3.
    q, k, v = _inputs(gen, (400, 8), (300, 8), 8, bound=1.0, dtype=torch.float32)
    err = _err(polynomial_attention(q, k, v, scale=1 / 8, impl=impl), q, k, v, 1 / 8)
    assert err <= _tolerance(q, k, v, 1 / 8, 1e-3)


@IMPLS
@given(
    n=st.integers(1, 24), m=st.integers(1, 24), d=st.integers(1, 5), dv=st.integers(1, 4),
    bound=st.floats(0.1, 2.0), radius=st.floats(0.0, 4.0), eps=st.sampled_from([1e-2, 1e-3, 1e-5]),
    dtype=st.sampled_from([torch.float64, torch.float32]), seed=st.integers(0, 2**31 - 1),
)
def test_property_error_within_bound(impl, n, m, d, dv, bound, radius, eps, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = _inputs(gen, (n, d), (m, d), dv, bound, dtype=dtype)
    scale = max(radius, 1e-6) / (d * bound**2)  # logits up to ~radius (entry bound: scale·d·B²)
    out = polynomial_attention(q, k, v, scale=scale, eps=eps, impl=impl)
    assert torch.isfinite(out).all()
    assert _err(out, q, k, v, scale) <= _tolerance(q, k, v, scale, eps)


@IMPLS
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_adversarial_logits_exactly_at_plus_minus_radius(dtype, sign, impl):
    # q and k parallel (or anti-parallel) with maximal norm: every logit sits at ±R, where the
    # relative error of P is largest (the ends of the Chebyshev interval).
    d, rho, scale = 4, 2.0, 0.5
    u = torch.ones(d, dtype=torch.float64) / math.sqrt(d)
    q = torch.stack([u * rho, -u * rho, u * rho]).to(dtype)  # (3, d)
    k = torch.stack([u * rho * sign, -u * rho * sign, u * rho * sign, u * rho * sign]).to(dtype)  # (4, d)
    v = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0.5, 0.0], [1.0, 1.0]], dtype=dtype)  # (4, 2)
    radius = scale * rho * rho  # = 2, attained exactly
    assert theory.logit_radius(q, k, scale) == radius  # entries ±1 exactly: norms 2, radius 2, all exact
    out = polynomial_attention(q, k, v, scale=scale, eps=1e-3, impl=impl)
    err = _err(out, q, k, v, scale)
    assert err <= _tolerance(q, k, v, scale, 1e-3)
    # The weights themselves: P(±R) within eps of exp(±R), from the public features.
    feats = PolynomialFeatures.create(d, radius, scale=scale, eps=1e-3)
    qq = q.double()[:2]
    approx = feats.phi(qq) @ feats.psi(qq).T  # logits ±R
    exact = torch.exp(scale * qq @ qq.T)
    assert ((approx / exact - 1).abs().max().item()) <= 1e-3


@IMPLS
def test_explicit_radius_and_degree_match_formula(gen, impl):
    q, k, v = _inputs(gen, (20, 3), (30, 3), 2, bound=1.0)
    out = polynomial_attention(q, k, v, scale=0.5, radius=3.0, degree=9, impl=impl)
    approx = exp_approx(3.0, 9)
    assert _err(out, q, k, v, 0.5) <= _tolerance(q, k, v, 0.5, 1e-3, radius=3.0, degree=9)
    # Hand formula: weights P(logit) with P = approx, normalised.
    w = torch.as_tensor(approx(0.5 * (q @ k.T).numpy()))  # (20, 30)
    # Both evaluate the same P-weighted average: each within the worst-case rounding of the formula.
    tol = 2 * theory.rounding_error_bound(unit_roundoff(), 30, 3, 9, approx.condition(), max_abs(v))
    assert_close(out, (w @ v) / w.sum(-1, keepdim=True), atol=tol, what="kernel vs hand formula")


@IMPLS
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_block_size_changes_only_rounding(gen, dtype, impl):
    q, k, v = _inputs(gen, (2, 41, 4), (2, 37, 4), 3, bound=1.0, dtype=dtype)
    full = polynomial_attention(q, k, v, scale=0.5, block_size=41, impl=impl)
    approx = minimal_approx(theory.logit_radius(q, k, 0.5), 1e-3)
    u = torch.finfo(dtype).eps / 2
    # Two runs differ by at most twice the worst-case rounding of one.
    tol = 2 * theory.rounding_error_bound(u, 37, 4, approx.degree, approx.condition(), v.abs().max().item())
    for block in (1, 7, 40, 96):  # the fused kernel rounds tiles to multiples of 32 tokens
        assert (polynomial_attention(q, k, v, scale=0.5, block_size=block, impl=impl) - full).abs().max().item() <= tol
    # and the two implementations agree to the same rounding
    other = "torch" if impl == "fused" else impl
    assert (polynomial_attention(q, k, v, scale=0.5, impl=other) - full).abs().max().item() <= tol


@IMPLS
def test_degree_zero_is_uniform_attention(gen, impl):
    q, k, v = _inputs(gen, (5, 3), (6, 3), 2, bound=0.01)
    out = polynomial_attention(q, k, v, scale=1.0, eps=0.5, impl=impl)  # tiny radius: P = constant suffices
    assert minimal_approx(theory.logit_radius(q, k, 1.0), 0.5).degree == 0
    # Equal weights: the kernel's rounding at degree 0 (κ = 1) plus the mean's γ_{m+1}.
    tol = theory.rounding_error_bound(unit_roundoff(), 6, 3, 0, 1.0, max_abs(v)) + gamma(6 + 1) * max_abs(v)
    assert_close(out, v.mean(-2, keepdim=True).expand(5, 2), atol=tol)


@IMPLS
def test_zero_inputs_give_uniform_attention(impl):
    q, k = torch.zeros(3, 2, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64)
    v = torch.arange(8.0).double().view(4, 2)
    # Every logit is 0, so every weight is P(0) whatever the degree: an equal-weight average, within
    # the kernel's rounding (κ of the P it picks) plus the mean's γ_{m+1}.
    approx = minimal_approx(theory.logit_radius(q, k, None), 1e-3)
    tol = (theory.rounding_error_bound(unit_roundoff(), 4, 2, approx.degree, approx.condition(), max_abs(v))
           + gamma(4 + 1) * max_abs(v))
    assert_close(polynomial_attention(q, k, v, impl=impl), v.mean(0).expand(3, 2), atol=tol)


##################################################################################
#                         Feature maps (public API)                              #
##################################################################################

def test_monomial_table_enumerates_each_multiset_once():
    t = monomial_table(3, 4)
    assert t.rank == theory.feature_rank(3, 4) == 35
    x = torch.tensor([[2.0], [3.0], [5.0]], dtype=torch.float64)  # (d, 1) distinct primes
    vals = raw_monomials(x, t)[:, 0]  # (r,)
    assert len(set(vals.tolist())) == 35  # unique factorisation: every monomial distinct
    # Σ over |α| = i of mult(α)·x^α = (Σ x)^i (multinomial theorem), for each degree i.
    for i in range(5):
        sel = torch.as_tensor(t.degrees == i)
        # integers below 2^53 throughout: every product and sum is exact in float64
        assert (vals[sel] * torch.as_tensor(t.multinomials)[sel]).sum().item() == 10.0**i


@given(d=st.integers(1, 6), radius=st.floats(0.0, 5.0), eps=st.sampled_from([1e-2, 1e-4]),
       seed=st.integers(0, 2**31 - 1))
def test_property_features_approximate_exp_inside_radius(d, radius, eps, seed):
    gen = torch.Generator().manual_seed(seed)
    scale = 0.7
    feats = PolynomialFeatures.create(d, radius, scale=scale, eps=eps)
    assert feats.rank == theory.feature_rank(d, feats.degree) and feats.relative_error <= eps
    # Random directions with norms so that scale·‖q‖·‖k‖ ≤ radius.
    q = torch.randn(9, d, generator=gen, dtype=torch.float64)
    k = torch.randn(7, d, generator=gen, dtype=torch.float64)
    rho = math.sqrt(radius / scale)
    q = q / q.norm(dim=-1, keepdim=True) * rho * torch.rand(9, 1, generator=gen, dtype=torch.float64)
    k = k / k.norm(dim=-1, keepdim=True) * rho
    phi, psi = feats.phi(q), feats.psi(k)  # (9, r), (7, r)
    assert phi.shape == (9, feats.rank) and psi.shape == (7, feats.rank)
    rel = (phi @ psi.T / torch.exp(scale * q @ k.T) - 1).abs().max().item()
    # φ·ψ: a sum of r terms of ≤ g + 2 rounded factors each, bounded by Σ|b_i| → γ_N·κ relative; the
    # reference exp(scale·⟨q, k⟩) errs by its argument's (γ_d + u)·radius (Σ|q||k|·scale ≤ radius)
    # plus LIBM_ULPS ulp; the ratio adds u.
    feat = gamma(feats.rank + feats.degree + 2) * feats.approx.condition()
    ref = math.expm1((gamma(d) + unit_roundoff()) * radius) + LIBM_ULPS * 2 * unit_roundoff()
    tol = (1 + feats.relative_error) * (1 + feat) * (1 + unit_roundoff()) / (1 - ref) - 1
    assert rel <= tol


def test_feature_coefficients_are_the_polynomial():
    feats = PolynomialFeatures.create(2, 1.5, scale=1.0, eps=1e-6)
    a = feats.coefficients  # P(x) = Σ a_i x^i
    x = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
    y = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    logit = (x @ y.T).item()  # −0.5
    expected = sum(c * logit**i for i, c in enumerate(a))
    # Two evaluations of Σ a_i x^i (features: r terms of ≤ g + 2 factors; Python: g + 1 terms of
    # ≤ g + 1 factors), each within γ_N·Σ|a_i||x|^i.
    size = sum(abs(c) * abs(logit) ** i for i, c in enumerate(a))
    n_ops = feats.rank + 2 * feats.degree + 4
    assert_close((feats.phi(x) @ feats.psi(y).T).item(), expected, atol=2 * gamma(n_ops) * size)


def test_gradcheck_fixed_polynomial():
    gen = torch.Generator().manual_seed(3)
    q, k, v = (t.requires_grad_() for t in _inputs(gen, (3, 2), (4, 2), 2, bound=1.0))
    fn = lambda q, k, v: polynomial_attention(q, k, v, scale=0.7, radius=2.0, degree=4, block_size=2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))
    # And autograd through the default (radius from the inputs) path runs and is finite.
    polynomial_attention(q, k, v).sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def _backward_elements(block: int, n: int = 1024) -> int:
    """Elements of every tensor the backward of polynomial_attention creates, at ``block`` rows
    per tile (counted by a dispatch mode over the aten ops autograd runs; no timing)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            Count.total += sum(t.numel() for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor))
            return out

    gen = torch.Generator().manual_seed(5)
    q, k, v = (t.requires_grad_() for t in _inputs(gen, (n, 4), (n, 4), 4, bound=1.0))
    loss = polynomial_attention(q, k, v, radius=2.0, degree=2, block_size=block).square().sum()
    with Count():
        loss.backward()
    return Count.total


def test_backward_work_does_not_grow_with_the_number_of_tiles():
    # A tile taken by slicing has a backward that writes a zero gradient of the whole operand per
    # tile: n/block tiles → O(n²/block) elements (at n = 2^21 that was 4 GiB of page faults per
    # call and local slopes up to 1.6, docs/fit.md "Designs"). Tiles by torch.split are
    # concatenated once. 1024 rows in 128 tiles of 8 against one tile: slicing wrote 128 × (n·d)
    # more (11× the one-tile count here; 1.13× with split: per-tile bookkeeping).
    one, many = _backward_elements(1024), _backward_elements(8)
    assert many <= 1.5 * one, (many, one)


##################################################################################
#                               Bad input                                        #
##################################################################################

@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (lambda: (torch.randn(4, 3), torch.randn(5, 2), torch.randn(5, 2)), {}, "feature dim"),
        (lambda: (torch.randn(4, 3), torch.randn(5, 3), torch.randn(6, 2)), {}, "key count"),
        (lambda: (torch.tensor([[math.inf, 0.0]]), torch.randn(5, 2), torch.randn(5, 2)), {}, "non-finite"),
        (lambda: (torch.randn(4, 2).half(), torch.randn(5, 2).half(), torch.randn(5, 2).half()), {}, "float16"),
        (lambda: (torch.randn(4, 2), torch.randn(5, 2), torch.randn(5, 2)), {"eps": 0.0}, "eps=0.0"),
        (lambda: (torch.randn(4, 2), torch.randn(5, 2), torch.randn(5, 2)), {"eps": 1.0}, "eps=1.0"),
        (lambda: (torch.randn(4, 2), torch.randn(5, 2), torch.randn(5, 2)), {"degree": -1}, "degree=-1"),
        (lambda: (torch.randn(4, 2), torch.randn(5, 2), torch.randn(5, 2)), {"block_size": 0}, "block_size=0"),
        (lambda: (torch.randn(4, 2), torch.randn(5, 2), torch.randn(5, 2)), {"memory_budget": 0}, "memory_budget"),
        (lambda: (torch.randn(4, 2), torch.randn(5, 2), torch.randn(5, 2)), {"radius": math.nan}, "radius=nan"),
    ],
)
def test_bad_input_raises(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        polynomial_attention(*args(), **kwargs)


def test_radius_smaller_than_bound_names_both():
    q = torch.tensor([[3.0, 4.0]])
    k = torch.tensor([[1.0, 0.0]])
    v = torch.ones(1, 1)
    with pytest.raises(ValueError, match=r"radius=2 .*bound.*=2\.5"):
        polynomial_attention(q, k, v, scale=0.5, radius=2.0)
    polynomial_attention(q, k, v, scale=0.5, radius=2.5)  # exactly the bound is fine


def test_unreachable_eps_names_radius_eps_and_cap():
    q = torch.full((2, 4), 3.5)  # R = 49 > MAX_RADIUS: refused before any Remez solve
    with pytest.raises(ValueError, match=r"max_degree=40.*eps=1e-09.*radius=49"):
        polynomial_attention(q, q, q, scale=1.0, eps=1e-9)


@IMPLS
def test_degree_over_memory_budget_says_what_fits(gen, impl):
    q, k, v = _inputs(gen, (64, 8), (64, 8), 8, bound=1.0, dtype=torch.float32)
    layout = {"fused": impl == "fused", "factored": impl == "torch", "virtual_top": impl == "fused"}
    budget = theory.polynomial_forward_cost(64, 64, 8, 8, 3, block=64, **layout).bytes
    with pytest.raises(ValueError, match=r"degree 6 .*memory_budget.*degree ≤ 3 .*eps ≥"):
        polynomial_attention(q, k, v, degree=6, block_size=64, memory_budget=budget, impl=impl)
    polynomial_attention(q, k, v, degree=3, block_size=64, memory_budget=budget, impl=impl)  # the named degree fits


def test_degree_with_relative_error_above_one_refused():
    q = torch.full((2, 2), 2.0, dtype=torch.float64)
    with pytest.raises(ValueError, match="non-positive"):  # R = 8: the Chebyshev line goes negative
        polynomial_attention(q, q, q, scale=1.0, degree=1, construction="chebyshev")
    # The relative-error minimax of any degree has E_g ≤ E_0 = tanh R < 1, so it is always positive.
    out = polynomial_attention(q, q, q, scale=1.0, degree=1)
    assert bool(torch.isfinite(out).all())


@IMPLS
def test_non_positive_normaliser_raises_instead_of_nan(monkeypatch, impl):
    # Force P = −1 (as rounding could in float32 at huge radius) to exercise the guard itself.
    bad = ExpApprox(radius=1.0, degree=0, coefficients=(-1.0,), relative_error=0.5)
    monkeypatch.setattr(poly_mod, "choose_approx", lambda radius, eps, degree, construction: bad)
    with pytest.raises(NormaliserError, match="polynomial: .*normaliser"):
        polynomial_attention(torch.randn(3, 2), torch.randn(4, 2), torch.randn(4, 2), impl=impl)


def test_impl_choice_is_explained():
    q = torch.rand(4, 3, requires_grad=True)
    with pytest.raises(ValueError, match="impl='fused' cannot run: the fused kernel has no autograd"):
        polynomial_attention(q, q, q, impl="fused")
    with pytest.raises(ValueError, match=r"impl='gpu' is not allowed.*'auto', 'fused', 'torch'"):
        polynomial_attention(q, q, q, impl="gpu")
    polynomial_attention(q, q, q).sum().backward()  # auto falls back to torch under autograd
    assert q.grad is not None and torch.isfinite(q.grad).all()
    assert poly_mod.resolve_impl("auto", "cuda") == "torch"
    assert poly_mod.resolve_impl("auto", "cpu") == ("fused" if fused.available() else "torch")


def test_forced_fallback_records_torch(monkeypatch):
    # DITBENCH_FUSED=0 (or a failed build) makes auto pick torch and the registry say so.
    monkeypatch.setattr(fused, "_load", lambda: (None, "DITBENCH_FUSED=0 forces the pure-torch path"))
    p = Problem(n=64, m=64, d=4, dv=4, bound=1.0, scale=0.25)
    assert KERNELS["polynomial"].describe(p, KERNELS["polynomial"].resolved_params({}))["impl"] == "torch"
    reasons = KERNELS["polynomial"].unsupported_reasons(p, {"impl": "fused"})
    assert reasons and "DITBENCH_FUSED=0" in reasons[0]


##################################################################################
#                               Registry                                         #
##################################################################################

def test_registered_with_params_cost_and_limits():
    kernel = KERNELS["polynomial"]
    assert set(kernel.params) == {"eps", "degree", "radius", "block_size", "memory_budget", "impl",
                                  "construction"}
    p = Problem(n=4096, m=2048, d=8, dv=4, bound=1.0, scale=1 / 8)
    g = theory.degree_for(p.radius_bound(), 1e-3)
    for impl in ("torch", "fused") if fused.available() else ("torch",):
        cost = kernel.predicted_cost(p, {"impl": impl})
        layout = {"fused": impl == "fused", "factored": impl == "torch", "virtual_top": impl == "fused"}
        assert cost.flops == theory.polynomial_forward_cost(4096, 2048, 8, 4, g, **layout).flops
    assert kernel.unsupported_reasons(p) == []
    too_big = kernel.unsupported_reasons(p, {"memory_budget": 1e3})
    assert too_big and "memory_budget" in too_big[0]
    unreachable = kernel.unsupported_reasons(Problem(n=64, m=64, d=8, dv=4, bound=10.0, scale=1.0))
    assert unreachable and "eps" in unreachable[0]
    assert "entry bound" in kernel.unsupported_reasons(Problem(n=64, m=64, d=8, dv=4))[0]
    gen = torch.Generator().manual_seed(0)
    q, k, v = _inputs(gen, (10, 8), (12, 8), 4, bound=1.0)
    assert torch.equal(kernel(q, k, v, scale=1 / 8, eps=1e-4), polynomial_attention(q, k, v, scale=1 / 8, eps=1e-4))


##################################################################################
#                        Streaming, devices, benchmark script                    #
##################################################################################

@pytest.mark.slow
def test_streams_without_n_by_r_features():
    # n = m = 4096, d = 8, degree 4: an (n, r) float32 feature matrix would be 8 MiB; the kernel
    # holds (block, r') tiles and the (r', (d + 1)(dv + 1)) summary, so no single allocation
    # comes near it (the largest are the n·dv output and, on the torch path, the n·(d + 1)
    # normalised inputs; the fused path allocates the output and the small summaries only).
    gen = torch.Generator().manual_seed(0)
    n, d = 4096, 8
    q, k, v = (torch.rand(n, d, generator=gen) * 2 - 1 for _ in range(3))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        polynomial_attention(q, k, v, scale=1 / d, degree=4, block_size=512)
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert n * d * 4 <= largest < n * theory.feature_rank(d, 4) * 4 // 8


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(0)
    q, k, v = _inputs(gen, (2, 300, 8), (2, 200, 8), 8, bound=1.0, dtype=torch.float32)
    out = polynomial_attention(q.cuda(), k.cuda(), v.cuda(), scale=1 / 8)
    assert out.device.type == "cuda"
    assert _err(out.cpu(), q, k, v, 1 / 8) <= _tolerance(q, k, v, 1 / 8, 1e-3)


def test_benchmark_script_does_no_work_at_import(monkeypatch):
    import importlib.util
    import os
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "perf_forward.py"
    spec = importlib.util.spec_from_file_location("perf_forward_probe", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    spec.loader.exec_module(module)
    assert callable(module.main) and "OMP_WAIT_POLICY" not in os.environ
