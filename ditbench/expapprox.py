"""Polynomial approximation of exp with a verified relative error (DESIGN §3.1, step 1).

The polynomial method replaces exp(x) on [−R, R] by a polynomial P of degree g. Two
constructions (:data:`METHODS`):

* ``"minimax"`` (default): the relative-error minimax polynomial, min_P max |e^{−x}P(x) − 1|,
  by the Remez exchange in high precision (:mod:`ditbench.remez`), coefficients rounded to
  float64 once;
* ``"chebyshev"``: the Chebyshev interpolant of exp, converted to monomials in float64 (the
  first construction, kept for comparison: it loses a factor ≈ e^R in *relative* error, so it
  needs up to 7–10 more degrees at R = 10).

Either way the relative error of the float64 coefficients actually used is *measured* on a
dense grid with compensated (double-float64) Horner evaluation, so that float64 evaluation is
not what limits the figure; every degree the kernels use carries a checked guarantee.

Coefficients are returned in the normalised variable t = x/R ∈ [−1, 1]:
P(x) = Σ_i b_i (x/R)^i. Working in t keeps every b_i of order one (b_i ≈ R^i/i!) and lets the
kernels fold R into the feature normalisation. ``monomial_coefficients`` gives a_i = b_i / R^i.

This is a low-level module: it imports only numpy (and mpmath, lazily, for the Remez exchange;
``ditbench.theory`` builds on it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as cheb
from numpy.polynomial import polynomial as poly

# Grid points per unit of degree. The error curve P(x)e^{−x} − 1 of a degree-g interpolant has
# about g + 1 extrema spaced like Chebyshev points, so a Chebyshev-spaced grid of 64·(g + 1)
# points samples each lobe ~64 times; near a lobe's peak the curve is ≈ cos, so the sampled
# maximum underestimates the true one by at most 1 − cos(π/64) ≈ 1.2e-3 (relative).
GRID_PER_DEGREE = 64
# Safety factor covering that undersampling: a degree is accepted only if the sampled error,
# inflated by this factor, is within eps.
GRID_SLACK = 1.0 + 1.5e-3
# Largest degree searched (rank C(40 + d, d) is far beyond memory for any d ≥ 4); the
# realised-error check guards every degree below it.
MAX_DEGREE = 40
# Largest radius accepted: no degree ≤ MAX_DEGREE gets below relative error 1 far before this,
# and beyond it exp(±R) and the monomial coefficients leave float64's comfortable range.
MAX_RADIUS = 40.0
# Radii the minimal construction is built for: the next point of a geometric grid 2^(k/128)
# (≤ 0.55 % above the requested radius). P for R' ≥ R is valid on [−R, R], and the grid lets a
# run's many slightly different realised radii share one cached Remez solve.
RADIUS_STEPS_PER_OCTAVE = 128
METHODS = ("minimax", "chebyshev")


@dataclass(frozen=True)
class ExpApprox:
    """A verified polynomial approximation of exp on [−radius, radius].

    radius: R ≥ 0, the half-width of the interval (logit units).
    degree: g, the polynomial degree.
    coefficients: (g + 1,) float64 b_i with P(x) = Σ_i b_i (x/R)^i (for R = 0: b = (1, 0, …)).
    relative_error: the realised max |P(x)/eˣ − 1| of these float64 coefficients on the dense
        grid (compensated evaluation, so the figure is P's, not float64 Horner's).
    method: the construction, one of :data:`METHODS`.
    exact_error: for ``"minimax"``, the certified upper bound on the minimax error E_g in exact
        arithmetic (before rounding the coefficients to float64); None for ``"chebyshev"``.
    """

    radius: float
    degree: int
    coefficients: tuple[float, ...]
    relative_error: float
    method: str = "minimax"
    exact_error: float | None = None

    def monomial_coefficients(self) -> np.ndarray:
        """(g + 1,) float64 a_i with P(x) = Σ_i a_i x^i (a_i = b_i / R^i)."""
        b = np.asarray(self.coefficients)
        if self.radius == 0.0:
            return b.copy()
        return b / self.radius ** np.arange(self.degree + 1)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        """Evaluate P at x (logit units) in float64."""
        t = np.asarray(x, dtype=np.float64) / (self.radius if self.radius > 0 else 1.0)
        return poly.polyval(t, np.asarray(self.coefficients))

    def condition(self) -> float:
        """Σ_i |b_i| / min_{|x| ≤ R} P(x): how much rounding in evaluating P as a sum of monomial
        terms (each bounded by |b_i|) is amplified relative to the smallest value P takes.
        It is e^{2R}·(1 + O(eps)) when every b_i > 0, and the factor by which float32 rounding of
        the feature inner products exceeds one ulp of P."""
        b = np.asarray(self.coefficients)
        t = _grid(self.radius, self.degree) / (self.radius if self.radius > 0 else 1.0)
        p_min = float(np.min(compensated_horner(b, t)))
        return float(np.sum(np.abs(b))) / p_min


def _grid(radius: float, degree: int) -> np.ndarray:
    """Chebyshev–Lobatto-spaced points on [−R, R] (endpoints included), ≥ 1025 of them."""
    count = max(1025, GRID_PER_DEGREE * (degree + 1) + 1)
    return radius * np.cos(np.pi * np.arange(count) / (count - 1))


##################################################################################
#             Compensated evaluation (error-free transformations)                #
##################################################################################

def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s + e = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = 134217729.0 * a  # 2^27 + 1 (Dekker)
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p + e = a·b exactly (Dekker; no FMA needed)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def compensated_horner(coeffs: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Σ_i coeffs[i]·t^i with the accuracy of Horner in twice float64's precision
    (Graillat, Langlois & Louvet 2005): |error| ≤ u·|P(t)| + 2γ_{2g}²·Σ|c_i||t|^i.

    Near t = −1 the monomial sum cancels by about e^{2R}, so plain float64 Horner would resolve
    P only to ≈ u·e^{2R} (5e-8 at R = 10); the compensated sum's second term is ≈ u²·e^{2R}.
    coeffs: (g + 1,) float64, ascending. t: (N,) float64. Returns (N,) float64.
    """
    t = np.asarray(t, dtype=np.float64)
    c = np.asarray(coeffs, dtype=np.float64)
    s = np.full_like(t, c[-1])
    err = np.zeros_like(t)
    for coef in c[-2::-1]:
        p, pi = _two_prod(s, t)
        s, sigma = _two_sum(p, np.full_like(t, coef))
        err = err * t + (pi + sigma)
    return s + err


def _check_radius(radius: float) -> float:
    radius = float(radius)
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"radius={radius} must be finite and ≥ 0")
    return radius


def _radius_too_large(radius: float, eps: float, max_degree: int) -> str:
    return (f"no polynomial of degree ≤ max_degree={max_degree} reaches relative error eps={eps:g} for exp "
            f"on [−radius, radius] with radius={radius:g} (radius > {MAX_RADIUS:g} is beyond the float64 "
            f"monomial construction); shrink the logit radius (smaller entries or scale)")


def _chebyshev(radius: float, degree: int) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Interpolate exp(R·t) at the g + 1 Chebyshev points of the first kind, convert to monomials
    in t (float64). No reference points; no exact-arithmetic error."""
    # (numpy's stubs type chebinterpolate's callable by its coefficient type, not a float function)
    c = np.asarray(cheb.chebinterpolate(lambda t: np.exp(radius * t), degree),  # type: ignore[type-var]
                   dtype=np.float64)  # (g + 1,) Chebyshev coefficients
    b = np.asarray(cheb.cheb2poly(c), dtype=np.float64)  # (g + 1,) monomial coefficients in t
    b = np.pad(b, (0, degree + 1 - b.shape[0]))  # cheb2poly trims trailing zeros (a radius near 0)
    return b, np.empty(0), None


def _minimax(radius: float, degree: int) -> tuple[np.ndarray, np.ndarray, float | None]:
    """The Remez minimax (ditbench.remez), rounded to float64, with its alternation points."""
    from .remez import remez

    best = remez(radius, degree)
    return np.asarray(best.float_coefficients()), np.asarray(best.reference), best.error_upper


_BUILDERS = {"minimax": _minimax, "chebyshev": _chebyshev}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not an exp construction; allowed values: {list(METHODS)}")
    return method


@lru_cache(maxsize=4096)
def exp_approx(radius: float, degree: int, method: str = "minimax") -> ExpApprox:
    """The degree-``degree`` approximation of exp on [−radius, radius] by ``method``, verified.

    Builds the coefficients b_i in t = x/R (float64) and measures their relative error
    max |P e^{−x} − 1| by compensated evaluation on a dense Chebyshev-spaced grid, plus (for
    ``"minimax"``) the construction's own alternation points, where the maxima sit.
    """
    radius = _check_radius(radius)
    if isinstance(degree, bool) or int(degree) != degree or degree < 0:
        raise ValueError(f"degree={degree} must be an integer ≥ 0")
    degree = int(degree)
    check_method(method)
    if radius > MAX_RADIUS:
        raise ValueError(f"radius={radius:g} exceeds {MAX_RADIUS:g}: "
                         "the float64 monomial form of P is meaningless there")
    if radius == 0.0:
        b = np.zeros(degree + 1)
        b[0] = 1.0  # exp(0) = 1 exactly
        return ExpApprox(radius=0.0, degree=degree, coefficients=tuple(float(v) for v in b), relative_error=0.0,
                         method=method, exact_error=0.0 if method == "minimax" else None)
    b, ref, exact = _BUILDERS[method](radius, degree)
    t = np.concatenate([_grid(radius, degree) / radius, ref])  # (N,) in [−1, 1]
    err = float(np.max(np.abs(compensated_horner(b, t) * np.exp(-radius * t) - 1.0)))
    return ExpApprox(radius=radius, degree=degree, coefficients=tuple(float(v) for v in b), relative_error=err,
                     method=method, exact_error=exact)


def quantised_radius(radius: float) -> float:
    """The smallest grid radius 2^(k/RADIUS_STEPS_PER_OCTAVE) ≥ ``radius`` (0 stays 0)."""
    radius = _check_radius(radius)
    if radius == 0.0:
        return 0.0
    k = math.ceil(math.log2(radius) * RADIUS_STEPS_PER_OCTAVE)
    out = 2.0 ** (k / RADIUS_STEPS_PER_OCTAVE)
    return out if out >= radius else 2.0 ** ((k + 1) / RADIUS_STEPS_PER_OCTAVE)


@lru_cache(maxsize=4096)
def minimax_degree(radius: float, eps: float, max_degree: int = MAX_DEGREE) -> int:
    """The true minimal degree g with relative-error minimax E_g ≤ eps on [−radius, radius], in
    exact arithmetic (certified by the Remez bracket; E_g is non-increasing in g, so bisection).

    This is a property of exp, not of any float format: whether float64 coefficients *realise*
    it is :func:`minimal_approx`'s question. Raises ValueError naming radius, eps and max_degree
    when no degree up to the cap qualifies.
    """
    from .remez import error_lower_bound, remez

    radius, eps, max_degree = _check_search(radius, eps, max_degree)
    if math.tanh(radius) <= eps:  # E_0 = tanh R (the constant 1/cosh R)
        return 0
    if radius > MAX_RADIUS:
        raise ValueError(_radius_too_large(radius, eps, max_degree))

    def reaches(degree: int) -> bool:  # the cheap lower bound rules most degrees out without Remez
        return error_lower_bound(radius, degree) <= eps and remez(radius, degree).error_upper <= eps

    try:  # the Chebyshev construction's verified degree is an upper bound (minimax is optimal)
        hi = _first_degree(radius, eps, max_degree, "chebyshev")
    except ValueError:  # float64 floor or cap: gallop up with the exact errors instead
        hi = next((g for g in (*range(8, max_degree, 8), max_degree) if reaches(g)), -1)
        if hi < 0:
            raise ValueError(
                f"no polynomial of degree ≤ max_degree={max_degree} reaches relative error eps={eps:g} for exp "
                f"on [−radius, radius] with radius={radius:g} (minimax error at degree {max_degree} ≥ "
                f"{error_lower_bound(radius, max_degree):.3g}); raise eps, shrink the logit radius (smaller "
                f"entries or scale) or raise max_degree") from None
    lo = -1  # invariant: E_lo > eps (degree −1: the zero polynomial, error 1), E_hi ≤ eps
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _check_search(radius: float, eps: float, max_degree: int) -> tuple[float, float, int]:
    radius = _check_radius(radius)
    eps = float(eps)
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    if isinstance(max_degree, bool) or int(max_degree) != max_degree or max_degree < 0:
        raise ValueError(f"max_degree={max_degree} must be an integer ≥ 0")
    return radius, eps, int(max_degree)


def _first_degree(radius: float, eps: float, max_degree: int, method: str, start: int = 0) -> int:
    """Lowest degree ≥ start whose realised error (with the grid slack) is ≤ eps."""
    best = math.inf
    for degree in range(start, max_degree + 1):
        err = exp_approx(radius, degree, method).relative_error
        if err * GRID_SLACK <= eps:
            return degree
        best = min(best, err)
    raise ValueError(
        f"no polynomial of degree ≤ max_degree={max_degree} reaches relative error eps={eps:g} for exp "
        f"on [−radius, radius] with radius={radius:g} (best realised error {best:.3g} by {method}); "
        f"raise eps, shrink the logit radius (smaller entries or scale) or raise max_degree"
    )


@lru_cache(maxsize=4096)
def minimal_approx(radius: float, eps: float, max_degree: int = MAX_DEGREE, method: str = "minimax") -> ExpApprox:
    """The lowest-degree :func:`exp_approx` by ``method`` whose realised relative error (float64
    coefficients, with the grid slack) is ≤ eps on [−radius, radius].

    ``"minimax"`` builds for :func:`quantised_radius` (≥ radius; the returned ``.radius``) and
    starts at :func:`minimax_degree`; rounding the coefficients to float64 can cost at most one
    more degree, except where it sets a floor of about u·e^{2R} (R ≳ 8 at eps ≲ 1e-8), which no
    degree beats: then ValueError naming the floor. ``"chebyshev"`` scans degrees from 0.
    Raises ValueError naming radius, eps and max_degree when no degree up to the cap qualifies.
    """
    radius, eps, max_degree = _check_search(radius, eps, max_degree)
    check_method(method)
    if radius > MAX_RADIUS:
        raise ValueError(_radius_too_large(radius, eps, max_degree))
    if method == "chebyshev":
        return exp_approx(radius, _first_degree(radius, eps, max_degree, method), method)
    built = quantised_radius(radius)
    start = minimax_degree(built, eps, max_degree)
    for degree in range(start, min(start + 1, max_degree) + 1):
        approx = exp_approx(built, degree, method)
        if approx.relative_error * GRID_SLACK <= eps:
            return approx
    raise ValueError(
        f"float64 coefficients cannot realise relative error eps={eps:g} for exp on [−radius, radius] with "
        f"radius={radius:g}: the minimax polynomial of degree {start} reaches {_exact_or(approx):.3g} in exact "
        f"arithmetic, but rounded to float64 it realises {approx.relative_error:.3g} (monomial coefficients "
        f"of size e^R cancel to e^−R at −R: a floor of about u·e^(2R)); raise eps or shrink the logit radius"
    )


def _exact_or(approx: ExpApprox) -> float:
    """The exact-arithmetic error of ``approx`` when known, else its realised error."""
    return approx.relative_error if approx.exact_error is None else approx.exact_error
