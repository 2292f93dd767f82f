"""Theory: hand-computed values, the exp approximation's verified error, and the cost model
against torch's FlopCounterMode."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from torch.utils.flop_counter import FlopCounterMode

from ditbench import theory
from ditbench.attention import exact_attention, polynomial_attention
from ditbench.expapprox import GRID_SLACK, MAX_DEGREE, exp_approx, minimal_approx


##################################################################################
#                           Hand-computed values                                 #
##################################################################################

def test_logit_radius_by_hand():
    q = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # max ‖q‖ = 5
    k = torch.tensor([[1.0, 0.0], [0.0, -2.0]])  # max ‖k‖ = 2
    assert theory.logit_radius(q, k, scale=0.5) == pytest.approx(5.0)
    assert theory.logit_radius(q, k) == pytest.approx(10.0 / math.sqrt(2))  # scale None → 1/√d


def test_ranks_by_hand():
    # d = 2, g = 2: {1, x, y, x², xy, y²}; the paper's count C(2(g + d), 2g) = C(8, 4) = 70.
    assert theory.feature_rank(2, 2) == 6
    assert theory.paper_rank_bound(2, 2) == 70
    assert theory.feature_rank(8, 4) == 495 and theory.feature_rank(8, 4) == sum(math.comb(i + 7, i) for i in range(5))


def test_thresholds_and_bounds_by_hand():
    assert theory.entry_threshold(55) == pytest.approx(math.sqrt(math.log(55)))  # √(ln 55) ≈ 2.0018
    assert theory.entry_threshold(2) == pytest.approx(0.8325546, rel=1e-6)  # √(ln 2)
    with pytest.raises(ValueError, match="n=1"):
        theory.entry_threshold(1)
    assert theory.output_error_bound(0.5, 3.0) == pytest.approx(3.0 / (1 + math.sqrt(0.75)))  # 2ε/(1+√(1−ε²))·V
    assert theory.loose_output_error_bound(0.5, 3.0) == pytest.approx(6.0)  # 2·0.5/0.5·3
    with pytest.raises(ValueError, match="eps=1.0"):
        theory.output_error_bound(1.0, 1.0)
    # u = 2^-53, m = 10, d = 1, g = 1: N = 10 + 2 + 2 + 4 = 18, κ = 4 → 2·γ·4/(1 − γ·4).
    u = 2.0**-53
    gamma = 18 * u / (1 - 18 * u)
    assert theory.rounding_error_bound(u, 10, 1, 1, 4.0, 1.0) == pytest.approx(8 * gamma / (1 - 4 * gamma))
    assert theory.rounding_error_bound(0.1, 10, 1, 1, 4.0, 1.0) == math.inf


def test_costs_by_hand():
    # exact: 2·n·m·(d + dv) + n·m = 2·3·5·(2 + 4) + 15 = 195; memory: one (block, m) tile ×2.
    c = theory.exact_forward_cost(3, 5, 2, 4, itemsize=8, block=2)
    assert (c.flops, c.bytes) == (195.0, 2 * 2 * 5 * 8)
    # polynomial, n = m = 10, d = 2, dv = 1, g = 2 → r = 6: 2·20·6·2 + 20·6 = 600.
    assert theory.polynomial_forward_cost(10, 10, 2, 1, 2).flops == 600.0
    # factored: r' = C(3, 2) = 3, w = 3·2 = 6: 2·20·3·6 + 20·(3 + 12) = 1020.
    assert theory.polynomial_forward_cost(10, 10, 2, 1, 2, factored=True).flops == 1020.0


def test_baseline_autograd_and_dit_costs_by_hand():
    assert theory.uniform_cost(8, 16, 4, itemsize=4) == theory.Cost(flops=64.0, bytes=128.0)
    g = theory.autograd_gradient_cost(100, 8, itemsize=4, streamed=False)
    assert g.flops == 12 * 100 * 100 * 8 + 3 * 100 * 100 and g.bytes == 3 * 100 * 100 * 4
    assert theory.autograd_gradient_cost(100, 8, streamed=True).bytes == 3 * 256 * 100 * 4
    assert theory.dit_linear_flops(16, 4, 4.0) == 2 * 16 * 16 * (3 + 1 + 8)
    head = theory.Cost(flops=10.0, bytes=2.0)
    fwd = theory.dit_cost(head, tokens=16, hidden=4, mlp_ratio=4.0, heads=2, blocks=3, batch=1, itemsize=4,
                          backward=False)
    assert fwd.flops == 3 * (2 * 10 + theory.dit_linear_flops(16, 4, 4.0))
    bwd = theory.dit_cost(head, tokens=16, hidden=4, mlp_ratio=4.0, heads=2, blocks=3, batch=1, itemsize=4,
                          backward=True)
    assert bwd.flops == 3 * fwd.flops and bwd.bytes > fwd.bytes  # autograd keeps every block's activations
    assert theory.latent_basis_flops(4, 1) == pytest.approx(2 * 4 - 2 / 3)
    # HyperAttention below min_seq_len is exact attention.
    assert theory.hyperattention_cost(64, 64, 8, 8, block_size=16, samples=8, lsh_num_projs=4, min_seq_len=128) == \
        theory.exact_forward_cost(64, 64, 8, 8, block=4096)


def test_norm_maxima_are_the_factors_of_the_radius():
    q = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert theory.norm_maxima(q, k) == (5.0, 2.0)
    assert theory.norm_maxima(q.float(), k.float(), dtype=None) == (5.0, 2.0)
    assert theory.logit_radius(q, k, 0.5) == 0.5 * 5.0 * 2.0


def test_max_degree_within_is_the_largest_fitting():
    budget = theory.polynomial_forward_cost(4096, 4096, 8, 8, 5, factored=True).bytes
    g = theory.max_degree_within(4096, 4096, 8, 8, budget, factored=True)
    assert g == 5
    assert theory.max_degree_within(4096, 4096, 8, 8, 1.0) == -1


##################################################################################
#                      Exp approximation and degree_for                          #
##################################################################################

def _independent_rel_error(radius: float, degree: int) -> float:
    """Relative error of exp_approx's coefficients on a fine *uniform* grid (not the one used to
    choose the degree), evaluated with Horner in float64."""
    x = np.linspace(-radius, radius, 200_001)
    p = exp_approx(radius, degree)(x)
    return float(np.max(np.abs(p * np.exp(-x) - 1)))


@pytest.mark.parametrize("radius", [0.0, 0.3, 1.0, 2.5, 6.0, 10.0])
@pytest.mark.parametrize("eps", [1e-2, 1e-3, 1e-6])
def test_degree_for_meets_eps_and_is_minimal(radius, eps):
    g = theory.degree_for(radius, eps)
    assert _independent_rel_error(radius, g) <= eps
    if g > 0:  # one degree less fails (the check is not over-conservative by a whole degree)
        assert _independent_rel_error(radius, g - 1) * GRID_SLACK > eps


@pytest.mark.parametrize("radius, eps", [(0.5, 1e-3), (1.0, 1e-3), (3.0, 1e-4), (8.0, 1e-5)])
def test_degree_for_at_most_the_chebyshev_interpolation_bound(radius, eps):
    # Interpolation at g + 1 Chebyshev nodes on [−R, R]: |e^x − P| ≤ e^R·2(R/2)^{g+1}/(g+1)!,
    # so relative error ≤ 2e^{2R}(R/2)^{g+1}/(g+1)!; the verified degree can only be smaller.
    bound_degree = next(g for g in range(200)
                        if 2 * math.exp(2 * radius) * (radius / 2) ** (g + 1) / math.factorial(g + 1)
                        <= eps / GRID_SLACK)
    assert theory.degree_for(radius, eps) <= bound_degree


def test_degree_for_by_hand_small_cases():
    assert theory.degree_for(0.0, 1e-9) == 0  # exp ≡ 1 on {0}
    # R = 0.01, eps = 0.02: the constant P = (e^R + e^{−R})/2 ≈ 1 has relative error ≈ R.
    assert theory.degree_for(0.01, 0.02) == 0
    # degree 1 on [−1, 1]: the line through the two Chebyshev nodes ±1/√2 is > 10 % off at −1.
    assert exp_approx(1.0, 1).relative_error > 0.1


def test_degree_for_refusal_names_radius_eps_and_cap():
    with pytest.raises(ValueError, match=r"max_degree=10.*eps=1e-09.*radius=15"):
        theory.degree_for(15.0, 1e-9, max_degree=10)
    with pytest.raises(ValueError, match=r"max_degree=40.*radius=100"):
        theory.degree_for(100.0, 1e-3)
    with pytest.raises(ValueError, match="eps=0"):
        theory.degree_for(1.0, 0.0)
    with pytest.raises(ValueError, match="radius=-1"):
        theory.degree_for(-1.0, 1e-3)


@given(radius=st.floats(0.0, 10.0), eps=st.floats(1e-6, 0.5))  # float64 monomials reach ~5e-8 at R = 10
def test_property_verified_error_and_positivity(radius, eps):
    approx = minimal_approx(radius, eps)
    assert approx.degree <= MAX_DEGREE and approx.relative_error * GRID_SLACK <= eps
    # ε < 1 on the grid ⇒ P > 0 there: the normalisers can never vanish in exact arithmetic.
    x = np.linspace(-radius, radius, 4097)
    assert np.all(approx(x) > 0)
    assert approx.monomial_coefficients()[0] == pytest.approx(approx.coefficients[0])


##################################################################################
#                   Cost model vs torch's FLOP counter                           #
##################################################################################

def _counted_flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def test_exact_cost_matmuls_match_flop_counter():
    n, m, d, dv = 96, 80, 4, 3
    q, k, v = torch.rand(n, d), torch.rand(m, d), torch.rand(m, dv)
    counted = _counted_flops(lambda: exact_attention(q, k, v, block_size=32))
    model = theory.exact_forward_cost(n, m, d, dv)
    assert counted == model.flops - n * m  # the model adds n·m exponentials FlopCounter ignores


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_polynomial_cost_matmuls_match_flop_counter(degree):
    n, m, d, dv = 100, 70, 3, 2
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.rand(t, c, generator=gen) * 0.1 for t, c in ((n, d), (m, d), (m, dv)))
    counted = _counted_flops(lambda: polynomial_attention(q, k, v, degree=degree, block_size=16, impl="torch"))
    model = theory.polynomial_forward_cost(n, m, d, dv, degree, factored=True)
    r_low = theory.feature_rank(d, max(degree - 1, 0))
    width = (d + 1 if degree >= 1 else 1) * (dv + 1)
    # FlopCounterMode counts the products only; the model's remainder is the elementwise work.
    assert counted == model.flops - (n + m) * (r_low + 2 * width)


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_fused_cost_products_match_flop_counter_on_their_torch_equivalent(degree):
    # The fused kernel's two products are Ψ(K)ᵀ[V, 1] (r × (dv + 1), summed over m keys) and
    # Φ(Q)·W (n × (dv + 1)); FlopCounterMode cannot see inside the C++ op, so it counts the same
    # products written with the explicit feature maps. The model's remainder is (n + m)·r feature work.
    from ditbench.attention.features import PolynomialFeatures

    n, m, d, dv = 100, 70, 3, 2
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.rand(t, c, generator=gen) * 0.1 for t, c in ((n, d), (m, d), (m, dv)))
    feats = PolynomialFeatures.create(d, 1.0, scale=1.0, degree=degree)
    phi, psi = feats.phi(q), feats.psi(k)  # (n, r), (m, r)
    va = torch.cat([v, torch.ones(m, 1)], dim=1)  # (m, dv + 1)
    counted = _counted_flops(lambda: phi @ (psi.T @ va))
    model = theory.polynomial_forward_cost(n, m, d, dv, degree, fused=True)
    r = theory.feature_rank(d, degree)
    assert counted == model.flops - (n + m) * r
    assert model.flops == theory.polynomial_forward_cost(n, m, d, dv, degree).flops  # the algorithm's own count
    with pytest.raises(ValueError, match="at most one"):
        theory.polynomial_forward_cost(n, m, d, dv, degree, fused=True, factored=True)


@pytest.mark.parametrize("d, degree", [(3, 0), (3, 1), (3, 3), (8, 4)])
def test_fused_cpu_cost_counts_what_the_extension_executes(d, degree):
    # csrc/feature_products.cpp never builds the top degree: its products are the lower rows
    # against [V, 1] plus, per top-level step (dst, src, count, j), rows src..src+count against
    # x_j ∘ [V, 1] (key pass) or w[dst..dst+count] (query pass). FlopCounterMode counts those
    # products written in torch; the elementwise work is counted here by walking the monomial
    # table (not from binomials): d scalings + one multiply per built row, x_j·v_c per key,
    # one multiply-add per (query, column, top step), the weights and the division.
    from ditbench.attention.features import monomial_table

    n, m, dv = 50, 40, 2
    c = dv + 1
    table = monomial_table(d, degree)
    top = table.levels[-1] if degree >= 2 else ()
    low = top[0][0] if top else table.rank
    lower_levels = table.levels[:-1] if top else table.levels
    built = d * (degree >= 1) + sum(step[2] for level in lower_levels for step in level)  # per token
    gen = torch.Generator().manual_seed(2)
    mk, mq = torch.rand(low, m, generator=gen), torch.rand(n, low, generator=gen)  # lower monomials
    va, w = torch.rand(m, c, generator=gen), torch.rand(table.rank, c, generator=gen)

    def products() -> None:
        mk @ va, mq @ w[:low]  # (low, C), (n, C)
        for dst, src, count, _ in top:
            mk[src:src + count] @ va, mq[:, src:src + count] @ w[dst:dst + count]  # x_j applied elementwise

    counted = _counted_flops(products)
    assert counted == 2 * (n + m) * table.rank * c
    elementwise = (n + m) * built + m * len(top) * c + 2 * n * len(top) * c + table.rank * c + n * dv
    model = theory.polynomial_forward_cost(n, m, d, dv, degree, fused=True, virtual_top=True)
    assert model.flops == counted + elementwise
    if (d, degree) == (8, 4):  # the perf setting: 330 of 495 rows not built outweigh the x_j work
        assert model.flops < theory.polynomial_forward_cost(n, m, d, dv, degree, fused=True).flops
    with pytest.raises(ValueError, match="with fused=True"):
        theory.polynomial_forward_cost(n, m, d, dv, degree, virtual_top=True)
