"""Almost-linear gradients (chained low-rank, autograd through the polynomial forward) against
float64 references, with the a-priori bound of ditbench.gradient.bounds as the tolerance.

The bound holds in exact arithmetic; in float64 rounding adds ≤ γ_N·κ_P·M (N = 4(n + k1·k2) terms
per accumulated entry, κ_P = ExpApprox.condition() the amplification of P's signed monomial sum,
M = s·‖A1‖₁·‖A2‖_max·2H·C the a-priori magnitude of the summands), which the tests add.
Float32 is checked flash-attention style: bound + 2 × the naive float32 baseline's error.
"""
from __future__ import annotations

import math

import pytest
import torch

from ditbench import theory
from ditbench.attention import polynomial_attention
from ditbench.expapprox import exp_approx, minimal_approx
from ditbench.gradient import (
    exact_gradient, gradient_error_bound, lowrank_gradient, polynomial_autograd_gradient,
)
from gradient_cases import adversarial_problems, make_problem, reference_grad
from tolerances import assert_close, gamma

U64 = torch.finfo(torch.float64).eps / 2


def _rounding(args, scale, approx, k2):
    a1, a2, a3, x, y, e = (t.double() for t in args)
    n = a1.shape[0]
    k1 = theory.feature_rank(a1.shape[1], approx.degree)
    h = a3 @ y
    mag = (scale * float(a1.abs().sum(0).max()) * float(a2.abs().max()) * 2
           * float(h.norm(dim=-1).max()) * float(h.norm(dim=-1).max() + e.norm(dim=-1).max()))
    big_n = 4 * (n + k1 * k2)
    return big_n * U64 / (1 - big_n * U64) * approx.condition() * mag


def _check(args, scale, eps, route, q_factor="paper"):
    """Run one route; return (err, bound, max|grad|). "lowrank-torch" is the pure-torch fallback of
    the key passes; "lowrank" is the default (fused C++ feature products where they build)."""
    grad = reference_grad(*args, scale)[0]
    if route.startswith("lowrank"):
        impl = "torch" if route == "lowrank-torch" else "auto"
        out, info = lowrank_gradient(*args, scale=scale, eps=eps, q_factor=q_factor, block_size=16, return_info=True,
                                     impl=impl)
        k2 = info.k2
    else:
        out, info = polynomial_autograd_gradient(*args, scale=scale, eps=eps, block_size=16, return_info=True)
        k2 = info.rank
    approx = exp_approx(info.radius, info.degree)
    bound = gradient_error_bound(*args, scale=scale, approx=approx, autograd=route == "autograd")
    bound += _rounding(args, scale, approx, k2)
    return (out.double() - grad).abs().max().item(), bound, grad.abs().max().item()


ROUTES = [("lowrank", "paper"), ("lowrank", "direct"), ("lowrank-torch", "paper"), ("lowrank-torch", "direct"),
          ("autograd", None)]


@pytest.mark.parametrize("route,q_factor", ROUTES)
@pytest.mark.parametrize("eps", [1e-2, 1e-4, 1e-7])
def test_random_inputs_within_bound(gen, route, q_factor, eps):
    args = make_problem(gen, 70, 4, bound=0.8)
    err, bound, size = _check(args, 0.5, eps, route, q_factor or "paper")
    assert err <= bound
    if eps <= 1e-7:  # the bound is informative: far below the gradient itself (so the test can fail)
        assert bound < 0.1 * size


@pytest.mark.parametrize("route,q_factor", ROUTES)
@pytest.mark.parametrize("name", ["logits_at_radius", "spike_row", "h_large_mean", "e_zero_far_target", "e_large"])
def test_adversarial_inputs_within_bound(gen, route, q_factor, name):
    args = adversarial_problems(gen, 48, 4)[name]
    err, bound, _ = _check(args, 0.5, 1e-3, route, q_factor or "paper")
    assert err <= bound


def test_info_ranks_and_degree(gen):
    args = make_problem(gen, 40, 3)
    out, info = lowrank_gradient(*args, scale=1 / 3, eps=1e-5, return_info=True)
    qx = args[0] @ args[3]
    radius = (1 / 3) * qx.norm(dim=-1).max().item() * args[1].norm(dim=-1).max().item()
    # Two float64 evaluations of s·max‖A1X‖·max‖A2‖ (each norm: d squares, a sum, a sqrt; then two
    # products), A1X itself within γ_d of |A1||X| row-wise.
    spread = float((args[0].abs() @ args[3].abs()).norm(dim=-1).max() / qx.norm(dim=-1).max())
    tol = 2 * (gamma(2 * (3 + 2) + 3) + gamma(3) * spread)
    # P is built for the next radius on the 2^(k/128) grid (ditbench.expapprox.quantised_radius)
    assert radius * (1 - tol) <= info.radius <= radius * 2 ** (1 / 128) * (1 + tol)
    assert info.degree == minimal_approx(radius, 1e-5).degree
    assert info.k1 == math.comb(info.degree + 3, 3) and info.k2 == info.k1 + 3 and info.k3 == info.k1 * info.k2
    _, direct = lowrank_gradient(*args, scale=1 / 3, eps=1e-5, q_factor="direct", return_info=True)
    assert direct.k2 == 3 and direct.k3 == 3 * direct.k1
    _, fixed = lowrank_gradient(*args, scale=1 / 3, degree=2, return_info=True)
    assert fixed.degree == 2 and fixed.k1 == math.comb(5, 3)


def test_block_size_changes_only_rounding(gen):
    args = make_problem(gen, 61, 4)
    ref = lowrank_gradient(*args, scale=0.5, eps=1e-4, block_size=61)
    approx = minimal_approx(lowrank_gradient(*args, scale=0.5, eps=1e-4, return_info=True)[1].radius, 1e-4)
    tol = _rounding(args, 0.5, approx, theory.feature_rank(4, approx.degree) + 4)
    for block in (1, 8, 33):
        assert (lowrank_gradient(*args, scale=0.5, eps=1e-4, block_size=block) - ref).abs().max().item() <= tol


@pytest.mark.parametrize("route", ["lowrank", "autograd"])
def test_float32_paper_setting(gen, route):
    # The benchmark's setting, scaled down: U[−0.5, 0.5], d = 4, scale = 1/d, eps = 1e-3.
    args64 = make_problem(gen, 300, 4, bound=0.5)
    args32 = tuple(t.float() for t in args64)
    grad = reference_grad(*args64, 0.25)[0]
    baseline = (exact_gradient(*args32, scale=0.25).double() - grad).abs().max().item()
    fn = lowrank_gradient if route == "lowrank" else polynomial_autograd_gradient
    out, info = fn(*args32, scale=0.25, eps=1e-3, return_info=True)
    assert out.dtype == torch.float32
    bound = gradient_error_bound(*args64, scale=0.25, approx=exp_approx(info.radius, info.degree),
                                 autograd=route == "autograd")
    assert (out.double() - grad).abs().max().item() <= bound + 2 * baseline


##################################################################################
#            Transformer setting: gradients wrt q, k, v of the forward            #
##################################################################################

def test_polynomial_attention_grads_qkv_within_bound(gen):
    """L = ½‖Att(Q, K, V) − E‖²: the gradient problem with A1X = Q, A2 = K, A3Y = V, so
    |p̂ − p| ≤ κ̂·f (bounds.logit_gradient_factor) gives entrywise bounds
    dQ: s·κ̂·f|K|, dK: s·κ̂·fᵀ|Q|, dV = f̃ᵀc̃: η·fᵀ(|c| + (1 + η)H) (|Δf| ≤ ηf, ‖Δc_i‖ ≤ ηH)."""
    from ditbench.gradient.bounds import derivative_relative_error, logit_gradient_factor, probability_error
    from ditbench.expapprox import GRID_SLACK

    n, d, s, eps = 50, 4, 0.5, 1e-3
    q, k, v, _, _, e = make_problem(gen, n, d, bound=1.0)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    f = torch.softmax(s * leaves[0] @ leaves[1].t(), dim=-1)  # (n, n)
    loss = 0.5 * (f @ leaves[2] - e).square().sum()
    ref = torch.autograd.grad(loss, leaves)
    f = f.detach()
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    out = polynomial_attention(*leaves, scale=s, eps=eps)
    got = torch.autograd.grad(0.5 * (out - e).square().sum(), leaves)

    radius = theory.logit_radius(q, k, s)
    approx = minimal_approx(radius, eps)
    eps_p = approx.relative_error * GRID_SLACK
    eta = probability_error(eps_p)
    big_h = float((v - v.mean(0)).norm(dim=-1).max())
    c_norm = float(v.norm(dim=-1).max() + e.norm(dim=-1).max())
    kappa = logit_gradient_factor(eps_p, big_h, c_norm, derivative_relative_error(approx) * GRID_SLACK)
    c = f @ v - e
    bounds = [s * kappa * f @ k.abs(), s * kappa * f.t() @ q.abs(), eta * f.t() @ (c.abs() + (1 + eta) * big_h)]
    # float64 rounding of both routes, entrywise: first order, each gradient errs by γ of its chain
    # (logits d, the softmax sum n, f·V n, cVᵀ dv, the row sum n, the product n; the polynomial
    # route's features add rank r = C(g + d, d) twice) times its magnitude envelope, from
    # |c| ≤ |f||V| + |E| and |p| ≤ P = f∘(|c||V|ᵀ + rowsum(f∘|c||V|ᵀ)): s·P|K|, s·Pᵀ|Q|, fᵀ|c|;
    # the polynomial's terms in absolute value sum to ≤ e^{|x|} ≤ e^{2R}·e^{x} on [−R, R].
    rank = math.comb(approx.degree + d, d)
    chain = gamma(d + 4 * n + v.shape[-1] + 2 * rank + 8) * math.exp(2 * radius)
    cv = (f @ v.abs() + e.abs()) @ v.abs().t()  # (n, n): |c||V|ᵀ
    big_p = f * (cv + (f * cv).sum(-1, keepdim=True))  # (n, n)
    envelopes = [s * big_p @ k.abs(), s * big_p.t() @ q.abs(), f.t() @ (f @ v.abs() + e.abs())]
    for name, g, r, b, env in zip("qkv", got, ref, bounds, envelopes):
        assert_close(g, r, atol=b + 2 * chain * env, what=f"d{name}")
    assert (got[2] - ref[2]).abs().max() > 0  # the approximation is not exact (the bound is doing work)
