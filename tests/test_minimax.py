"""The relative-error minimax construction against an independent computation.

Independent check: a linear programme (scipy.optimize.linprog, HiGHS) for the discrete minimax
min_P max_i |e^{−R t_i} P(t_i) − 1| on a fine Chebyshev-spaced grid, in the Chebyshev basis, as a
correction Δ to numpy's Chebyshev interpolant P_0 (so the LP only resolves Δ, of the size of P_0's
error, and float64 is not the limit). The residual of P_0 and the final errors are evaluated in
mpmath. Two facts make it a proof, not a comparison:

* a grid is a subset of [−1, 1], so the grid optimum E_LP(g) ≤ E_g (a *lower* bound), up to the
  solver's feasibility tolerance (1e-7 in the LP's units; we subtract 10× that) and the float64
  rounding of the LP's matrix (≤ 4·g·u·e^{2R} relative to its row scale);
* the LP's polynomial, evaluated exactly on a 2× denser grid, has max error ≥ E_g (an *upper*
  bound, up to the sampling margin of a 240-point-per-lobe grid, 1 − cos(π/240) ≈ 9e-5).

So E_LP(g − 1) > ε proves the true minimal degree g* ≥ g (E_LP(g − 2) > ε: g* ≥ g − 1), and the
LP polynomial of degree g + 1 meeting ε proves g* ≤ g + 1: |degree_for − g*| ≤ 1 (issue 12).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from numpy.polynomial import chebyshev as cheb
from scipy.optimize import linprog

from ditbench import theory
from ditbench.expapprox import compensated_horner, exp_approx, minimal_approx
from ditbench.remez import error_lower_bound, remez

LP_TOL = 1e-6  # 10× HiGHS's default primal/dual feasibility tolerance (1e-7), in the LP's scaled units
SAMPLING = 1 - math.cos(math.pi / 240)  # undersampling of a lobe on the 2× denser check grid
U = 2.0**-53


def _grid(count: int) -> np.ndarray:
    return -np.cos(np.pi * np.arange(count) / (count - 1))  # (count,) ascending in [−1, 1]


def _exact_rel_error(radius: float, parts: list[np.ndarray], t: np.ndarray) -> np.ndarray:
    """e^{−Rt}·P(t) − 1 in mpmath (40 digits beyond the e^{2R} cancellation) for P = Σ c_k T_k,
    c the exact sum of the float64 arrays ``parts`` (float64 Chebyshev coefficients alone would
    again carry a u·e^{2R} floor at t = −1)."""
    with mpmath.workdps(40 + int(2 * radius / math.log(10))):
        r = mpmath.mpf(radius)
        cs = [mpmath.fsum(mpmath.mpf(float(p[k])) for p in parts) for k in range(parts[0].size)]
        out = []
        for x in t:
            xm = mpmath.mpf(float(x))
            b1 = b2 = mpmath.mpf(0)  # Clenshaw: P = Σ c_k T_k(x)
            for c in reversed(cs[1:]):
                b1, b2 = 2 * xm * b1 - b2 + c, b1
            p = xm * b1 - b2 + cs[0]
            out.append(float(mpmath.exp(-r * xm) * p - 1))
    return np.asarray(out)


def _lp_pass(radius: float, base: list[np.ndarray], t: np.ndarray) -> tuple[float, float, list[np.ndarray]]:
    """One LP for the correction Δ to ``base`` (Chebyshev coefficients, an exact sum of float64
    arrays) on grid ``t``: (row scale s = max|residual of base|, E_LP, base + [Δ])."""
    degree = base[0].size - 1
    r0 = _exact_rel_error(radius, base, t)  # (N,) residual of the base, exact
    s = float(np.max(np.abs(r0)))
    basis = cheb.chebvander(t, degree) * np.exp(-radius * t)[:, None]  # (N, g + 1): T_k(t)·e^{−Rt}
    col = np.max(np.abs(basis), axis=0)  # column scaling
    a = basis / col  # row i: (r0_i + Σ_k δ_k basis_ik)/s = r0_i/s + (a·y)_i with δ_k = y_k·s/col_k
    ones = np.ones((t.size, 1))
    a_ub = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])  # ±(r0/s + a·y) ≤ E
    b_ub = np.concatenate([-r0 / s, r0 / s])
    c = np.zeros(degree + 2)
    c[-1] = 1.0
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * (degree + 1) + [(0, None)], method="highs")
    assert res.status == 0, res.message
    return s, float(res.x[-1]) * s, [*base, res.x[:-1] * s / col]


def lp_minimax(radius: float, degree: int) -> tuple[float, float, float]:
    """(rigorous lower bound on E_g, E_LP, rigorous-up-to-sampling upper bound on E_g).

    Two LP passes: the first corrects numpy's Chebyshev interpolant (whose error can exceed E_g
    by ≈ e^R), the second corrects the first's polynomial, so the second LP's row scale s is
    ≈ E_g and its tolerances are relative to E_g itself."""
    t = _grid(30 * (degree + 1) + 1)  # (N,)
    coeffs = [cheb.chebinterpolate(lambda x: np.exp(radius * x), degree)]  # (g + 1,) numpy's own P_0
    for _ in range(2):
        s, e_lp, coeffs = _lp_pass(radius, coeffs, t)
    # Row entries ≤ 1 times LP variables up to ≈ e^{2R} (Δ's coefficients ≈ s·e^R, columns ≈ e^R):
    # float64 rows carry ≤ (g + 2)·u·e^{2R} relative to s; 4× for the solver's own arithmetic.
    rounding = 4 * (degree + 2) * U * math.exp(2 * radius)
    lower = e_lp - (LP_TOL + rounding) * s
    dense = _grid(60 * (degree + 1) + 1)
    upper = float(np.max(np.abs(_exact_rel_error(radius, coeffs, dense)))) * (1 + SAMPLING)
    return lower, e_lp, upper


CASES = [(0.1, 1e-1), (0.1, 1e-9), (1.0, 1e-3), (1.0, 1e-9), (3.0, 1e-2), (3.0, 1e-6),
         (6.0, 1e-1), (6.0, 1e-4), (6.0, 1e-9), (10.0, 1e-1), (10.0, 1e-3), (10.0, 1e-6), (10.0, 1e-9)]


@pytest.mark.slow
@pytest.mark.parametrize("radius, eps", CASES)
def test_degree_for_within_one_of_the_lp_minimal_degree(radius, eps):
    g = theory.degree_for(radius, eps)
    assert lp_minimax(radius, g + 1)[2] <= eps  # a degree-(g + 1) polynomial meets eps ⇒ g* ≤ g + 1
    if g >= 1:
        # E_{g−1} ≥ its LP lower bound > eps ⇒ g* ≥ g: exactly minimal (what the Remez bracket claims);
        # only where the LP cannot separate E_{g−1} from eps, ask for g* ≥ g − 1 via degree g − 2.
        if not lp_minimax(radius, g - 1)[0] > eps:
            assert g >= 2 and lp_minimax(radius, g - 2)[0] > eps


@pytest.mark.slow
@pytest.mark.parametrize("radius, degree", [(1.0, 4), (4.0, 9), (8.0, 14), (10.0, 25)])
def test_remez_bracket_agrees_with_the_lp(radius, degree):
    best = remez(radius, degree)
    lower, e_lp, upper = lp_minimax(radius, degree)
    assert best.error_lower <= best.error_upper <= best.error_lower * (1 + 1e-8)
    assert lower <= best.error_upper  # grid optimum ≤ E_g
    assert best.error_lower <= upper  # any polynomial's max ≥ E_g
    assert error_lower_bound(radius, degree) <= best.error_upper  # the cheap bound is a bound
    assert e_lp == pytest.approx(best.error_upper, rel=1e-2)  # a 30-point-per-lobe grid loses < 1 %


def test_equioscillation_of_the_float64_coefficients():
    # g + 2 alternating extrema of equal size: the characterisation of the minimax polynomial.
    approx = exp_approx(6.0, 12)
    ref = np.asarray(remez(6.0, 12).reference)  # (g + 2,)
    e = compensated_horner(np.asarray(approx.coefficients), ref) * np.exp(-6.0 * ref) - 1  # (g + 2,)
    assert np.all(np.sign(e[1:]) == -np.sign(e[:-1]))
    # float64 coefficients move each extremum by ≤ u·Σ|b_i|/min P (≈ 2e-11 here) relative.
    slack = U * approx.condition() * 4
    assert np.max(np.abs(e)) <= approx.exact_error + slack
    assert np.min(np.abs(e)) >= approx.exact_error * (1 - 1e-8) - slack
    assert approx.relative_error == pytest.approx(approx.exact_error, rel=1e-6, abs=slack)


@pytest.mark.parametrize("radius, eps", [(1.0, 1e-3), (4.0, 1e-6), (8.0, 1e-3), (10.0, 1e-6)])
def test_minimax_needs_no_more_degrees_than_chebyshev_and_far_fewer_at_large_radius(radius, eps):
    g = theory.degree_for(radius, eps)
    g_cheb = theory.degree_for(radius, eps, method="chebyshev")
    assert g <= g_cheb
    if radius >= 8:  # the e^R relative-error loss of interpolation (DESIGN §3.1): ≥ 5 degrees here
        assert g_cheb - g >= 5


def test_rank_at_d8_eps1e3_radius8_drops_tenfold():
    before = theory.feature_rank(8, theory.degree_for(8.0, 1e-3, method="chebyshev"))
    after = theory.feature_rank(8, minimal_approx(8.0, 1e-3).degree)
    assert (before, after) == (3_108_105, 319_770)  # degree 20 → 14


def test_minimal_approx_is_built_for_a_radius_just_above_the_request():
    approx = minimal_approx(5.0, 1e-4)
    assert 5.0 <= approx.radius <= 5.0 * 2 ** (1 / 128)
    assert approx.degree in (theory.degree_for(5.0, 1e-4), theory.degree_for(5.0, 1e-4) + 1)
    assert approx.relative_error <= 1e-4


def test_float64_floor_is_refused_with_the_figures():
    # R = 10, eps = 1e-9: degree 26 reaches it exactly, but float64 monomials cancel by e^{20}.
    assert theory.degree_for(10.0, 1e-9) >= 20
    with pytest.raises(ValueError, match=r"float64 coefficients cannot realise.*eps=1e-09.*radius=10"):
        minimal_approx(10.0, 1e-9)


def test_compensated_horner_beats_float64_where_it_cancels():
    approx = exp_approx(10.0, 26)
    t = np.array([-1.0])
    b = np.asarray(approx.coefficients)
    with mpmath.workdps(60):
        exact = float(mpmath.fsum(mpmath.mpf(c) * mpmath.mpf(-1) ** i for i, c in enumerate(b)))
    # Compensated Horner (Langlois & Louvet 2007, Thm 4): |result − p(t)|/|p(t)| ≤ u + γ_{2g}²·cond(p, t),
    # cond = Σ|b_i||t|^i / |p(t)|; plus u for rounding the 60-digit sum to the float64 `exact`.
    cond = float(np.abs(b).sum()) / abs(exact)
    assert abs(compensated_horner(b, t)[0] / exact - 1) <= 2 * U + (2 * 26 * U / (1 - 2 * 26 * U)) ** 2 * cond
