"""The polynomial kernel's bounds: the tight exact-arithmetic constant, reached by adversarial
inputs, and the realistic float-rounding term, checked on adversarial float32 rows.

Tolerances: float64 runs of these tiny problems (≤ 64 keys, degree ≤ 10, d = 1) carry rounding
≤ 64·u·κ with κ = Σ|b_i|/min P ≤ e^{2R} (theory.rounding_error_bound's conditioning): 1e-12 here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ditbench import theory
from ditbench.attention import exact_attention, polynomial_attention
from ditbench.attention.polybounds import rounding_bound, row_condition
from ditbench.attention.polynomial import choose_approx, polynomial_radius
from ditbench.expapprox import compensated_horner, exp_approx
from ditbench.measure.workloads import rounding_warning
from ditbench.remez import remez
from tolerances import softmax_attention_bound

U64 = 2.0**-53


@pytest.mark.parametrize("eps", [0.5, 0.1, 1e-3, 1e-6])
def test_tight_constant_is_the_largest_reweighting_distance(eps):
    # TV(p, p(1+δ)/Σ) over |δ| ≤ ε is maximised by δ = ±ε on a set of mass α and its complement:
    # f(α) = α(1+ε)/(1 − ε + 2εα) − α. Its maximum over a fine α grid equals ε/(1 + √(1 − ε²)).
    alpha = np.linspace(0, 1, 2_000_001)
    f = alpha * (1 + eps) / (1 - eps + 2 * eps * alpha) - alpha
    assert 2 * f.max() == pytest.approx(theory.output_error_bound(eps, 1.0), rel=1e-9)
    assert alpha[f.argmax()] == pytest.approx(theory.worst_mass(eps), abs=1e-6)
    assert theory.output_error_bound(eps, 1.0) <= theory.loose_output_error_bound(eps, 1.0) / 2 * (1 + eps)


def _two_point_inputs(radius: float, degree: int, j: int):
    """Keys at two adjacent alternation points x_j, x_{j+1} of P's error (δ = ±E there), with counts
    giving the δ > 0 point the worst mass α*, values ±1: the tight bound's extremal case."""
    approx = exp_approx(radius, degree)
    t = np.asarray(remez(radius, degree).reference)[[j, j + 1]]  # (2,)
    x = radius * t
    e = compensated_horner(np.asarray(approx.coefficients), t) * np.exp(-x) - 1  # (2,) opposite signs
    pos, neg = (0, 1) if e[0] > 0 else (1, 0)
    target = theory.worst_mass(approx.relative_error)
    ratio = target / (1 - target)  # wanted c_pos·e^{x_pos} / (c_neg·e^{x_neg})
    w = math.exp(x[pos] - x[neg])
    c_pos, c_neg = (1, max(1, round(w / ratio))) if w >= ratio else (max(1, round(ratio / w)), 1)
    keys = [x[pos]] * c_pos + [x[neg]] * c_neg
    q = torch.ones(1, 1, dtype=torch.float64)
    k = torch.tensor(keys, dtype=torch.float64)[:, None]  # (m, 1): logit = q·k = x exactly
    v = torch.tensor([1.0] * c_pos + [-1.0] * c_neg, dtype=torch.float64)[:, None]  # (m, 1)
    return approx, q, k, v


@pytest.mark.parametrize("radius, degree", [(1.0, 3), (2.0, 6), (4.0, 8), (6.0, 10)])
@pytest.mark.parametrize("where", ["low", "mid", "high"])  # pairs with a logit exactly at −R, inside, at +R
def test_adversarial_inputs_reach_the_tight_constant(radius, degree, where):
    j = {"low": 0, "mid": degree // 2, "high": degree}[where]
    approx, q, k, v = _two_point_inputs(radius, degree, j)
    if where != "mid":  # the pair includes the endpoint: a logit exactly at ∓R
        assert float(k.abs().max()) == pytest.approx(radius, rel=1e-15)
    out = polynomial_attention(q, k, v, scale=1.0, radius=radius, degree=degree)
    err = float((out - exact_attention(q, k, v, scale=1.0)).abs().max())
    bound = theory.output_error_bound(approx.relative_error, 1.0)
    # Rounding on top of the ε-bound: the polynomial kernel's worst case (theory.rounding_error_bound:
    # γ_N·κ, κ = Σ|b_i|/min P ≈ e^{2R}) and the float64 exact reference's own (the softmax bound).
    rounding = theory.rounding_error_bound(U64, k.shape[0], 1, degree, approx.condition(), 1.0) + \
        softmax_attention_bound(q, k, v, 1.0)
    assert err <= bound + rounding, (err, bound, rounding)
    # Integer key counts put mass near, not at, α*; TV is flat there (f″ small): ≥ 95 % of the bound,
    # and more than the loose form's half.
    assert err >= 0.95 * bound
    assert err > 0.5 * 0.95 * theory.loose_output_error_bound(approx.relative_error, 1.0)


def _adversarial_rows(radius: float, d: int = 4, m: int = 4096, seed: int = 0):
    """Rows whose logits all sit near −R with aligned magnitudes (κ ≈ e^{2R}: the monomial sum
    cancels by that much), beside random rows on the same keys."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(d, generator=gen, dtype=torch.float64)
    u /= u.norm()
    rho = math.sqrt(radius)  # scale 1: |logit| ≤ ρ² = R
    k = -u * rho + 0.05 * rho * torch.randn(m, d, generator=gen, dtype=torch.float64)
    k = k / k.norm(dim=1, keepdim=True) * rho  # (m, d), all near −u
    q = torch.randn(16, d, generator=gen, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True) * rho
    q[:8] = u * rho  # rows 0..7 adversarial, 8..15 random directions
    v = torch.rand(m, 3, generator=gen, dtype=torch.float64) * 2 - 1
    return q, k, v


@pytest.mark.parametrize("radius", [2.0, 4.0, 6.25])
@pytest.mark.parametrize("eps", [1e-3, 1e-6])
def test_float32_rounding_term_on_adversarial_rows(radius, eps):
    q, k, v = _adversarial_rows(radius)
    ref = exact_attention(q, k, v, scale=1.0)
    q32, k32, v32 = (x.float() for x in (q, k, v))
    out = polynomial_attention(q32, k32, v32, scale=1.0, eps=eps, impl="torch").double()
    approx = choose_approx(polynomial_radius(q32, k32, 1.0, None)[2], eps, None)
    adv, rnd = torch.arange(8), torch.arange(8, 16)
    err_adv = float((out[adv] - ref[adv]).abs().max())
    term = rounding_bound(q32, k32, v32, 1.0, approx, block=1024, rows=adv)
    exact_part = theory.output_error_bound(approx.relative_error, float(v.abs().max()))
    kappa = float(row_condition(q32, k32, 1.0, approx, adv).min())
    assert kappa >= 0.1 * math.exp(2 * radius) * math.exp(-2 * 0.05 * radius * 3)  # the rows are adversarial
    assert err_adv <= exact_part + term  # the estimate covers what float32 does on these rows
    worst = theory.rounding_error_bound(2.0**-24, k.shape[0], 4, approx.degree, approx.condition(), 1.0)
    assert term < worst  # never looser than the worst case (which is vacuous, ≥ ‖V‖ or inf, from R = 4 on)
    if radius <= 4:
        assert term < 1.0  # non-vacuous where the worst-case term already is
    # Rows in other directions see less cancellation, and their term says so (κ is per row).
    assert rounding_bound(q32, k32, v32, 1.0, approx, block=1024, rows=rnd) < term
    # Where the measured error exceeds the ε-bound, the warning is due.
    if err_adv > exact_part:
        assert rounding_warning("float32", exact_part, term)


def test_warning_text_only_when_the_rounding_term_exceeds_the_bound():
    assert rounding_warning("float32", 1e-6, 1e-3).startswith("float32 rounding term 0.001 exceeds")
    assert "holds only in float64" in rounding_warning("float32", 1e-6, 1e-3)
    assert rounding_warning("float32", 1e-3, 1e-6) == ""
    assert rounding_warning("float64", None, 1.0) == "" and rounding_warning("float64", 1.0, None) == ""


def test_rounding_term_models():
    u = 2.0**-24
    assert theory.rounding_term(u, 100, 10.0, 1.0) == pytest.approx(2 * 10 * u / (1 - 10 * u))
    worst = theory.rounding_term(u, 100, 10.0, 1.0, model="worst")
    prob = theory.rounding_term(u, 100, 10.0, 1.0, model="probabilistic")
    assert theory.rounding_term(u, 100, 10.0, 1.0) < prob < worst
    assert theory.rounding_term(u, 100, 1e9, 1.0) == math.inf
    with pytest.raises(ValueError, match="model='x'"):
        theory.rounding_term(u, 100, 1.0, 1.0, model="x")


def _case(bound: float, dtype: str, eps: float):
    from ditbench.measure.cases import Case

    return Case(experiment="T", kernel="polynomial", op="forward", n=256, m=256, d=4, dv=4, bound=bound,
                bound_spec=str(bound), scale=0.25, scale_spec="1/d", params=(("eps", eps),), dtype=dtype,
                device="cpu", seed=0, threads=1, ref_rows=64)


@pytest.mark.parametrize("bound, dtype, eps", [(0.5, "float32", 1e-3), (2.0, "float32", 1e-6), (2.0, "float64", 1e-6)])
def test_measured_row_records_what_ran_and_warns_where_due(bound, dtype, eps):
    from ditbench.measure.families.attention import forward_inputs
    from ditbench.measure.families.attention import prepare as attention_prepare

    case = _case(bound, dtype, eps)
    prepared = attention_prepare(case)
    row = prepared.score(prepared.call())
    q, k, _ = forward_inputs(case)
    approx = choose_approx(polynomial_radius(q, k, 0.25, None)[2], eps, None)  # what the call itself used
    assert (row["degree"], row["rank"], row["poly_radius"]) == (approx.degree, math.comb(approx.degree + 4, 4),
                                                                approx.radius)
    assert row["poly_radius"] >= row["radius"]  # built for the realised radius, not scale·d·B²
    assert row["radius"] < case.scale * case.d * bound**2
    v_max = row["err_max"] / row["err_max_rel"]
    assert row["err_bound"] == pytest.approx(theory.output_error_bound(approx.relative_error, v_max))
    assert row["err_max"] <= row["err_bound"] + row["rounding_bound"]
    assert bool(row["warning"]) == (row["rounding_bound"] > row["err_bound"])
    if dtype == "float64":
        assert row["warning"] == ""
