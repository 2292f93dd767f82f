"""Polynomial approximation of exp with a verified relative error (DESIGN §3.1, step 1).

The polynomial method replaces exp(x) on [−R, R] by a polynomial P of degree g. This module
builds P as the Chebyshev interpolant of exp on [−R, R], converts it to the monomial basis in
float64 and *measures* its relative error max |P(x)/eˣ − 1| on a dense grid, so that every
degree the kernels use carries a checked guarantee rather than an asymptotic estimate.

Coefficients are returned in the normalised variable t = x/R ∈ [−1, 1]:
P(x) = Σ_i b_i (x/R)^i. Working in t keeps every b_i of order one (b_i ≈ R^i/i!) and lets the
kernels fold R into the feature normalisation. ``monomial_coefficients`` gives a_i = b_i / R^i.

This is a low-level module: it imports only numpy (``ditbench.theory`` builds on it).
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
# Above this degree the Chebyshev → monomial conversion loses accuracy in float64 (DESIGN §3.1:
# fine up to R ≈ 10, g ≈ 30); the realised-error check still guards every degree below it.
MAX_DEGREE = 40
# Largest radius accepted: no degree ≤ MAX_DEGREE gets below relative error 1 far before this,
# and beyond it exp(±R) and the monomial coefficients leave float64's comfortable range.
MAX_RADIUS = 40.0


@dataclass(frozen=True)
class ExpApprox:
    """A verified polynomial approximation of exp on [−radius, radius].

    radius: R ≥ 0, the half-width of the interval (logit units).
    degree: g, the polynomial degree.
    coefficients: (g + 1,) float64 b_i with P(x) = Σ_i b_i (x/R)^i (for R = 0: b = (1, 0, …)).
    relative_error: the realised max |P(x)/eˣ − 1| on the dense grid (float64 evaluation).
    """

    radius: float
    degree: int
    coefficients: tuple[float, ...]
    relative_error: float

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
        p_min = float(np.min(self(_grid(self.radius, self.degree))))
        return float(np.sum(np.abs(b))) / p_min


def _grid(radius: float, degree: int) -> np.ndarray:
    """Chebyshev–Lobatto-spaced points on [−R, R] (endpoints included), ≥ 1025 of them."""
    count = max(1025, GRID_PER_DEGREE * (degree + 1) + 1)
    return radius * np.cos(np.pi * np.arange(count) / (count - 1))


def _check_radius(radius: float) -> float:
    radius = float(radius)
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"radius={radius} must be finite and ≥ 0")
    return radius


def _radius_too_large(radius: float, eps: float, max_degree: int) -> str:
    return (f"no polynomial of degree ≤ max_degree={max_degree} reaches relative error eps={eps:g} for exp "
            f"on [−radius, radius] with radius={radius:g} (radius > {MAX_RADIUS:g} is beyond the float64 "
            f"monomial construction); shrink the logit radius (smaller entries or scale)")


@lru_cache(maxsize=1024)
def exp_approx(radius: float, degree: int) -> ExpApprox:
    """The degree-``degree`` Chebyshev interpolant of exp on [−radius, radius], verified.

    Interpolates exp(R·t) at the g + 1 Chebyshev points of the first kind in t ∈ [−1, 1],
    converts to monomials in t (float64) and measures the relative error on a dense grid using
    exactly those coefficients.
    """
    radius = _check_radius(radius)
    if isinstance(degree, bool) or int(degree) != degree or degree < 0:
        raise ValueError(f"degree={degree} must be an integer ≥ 0")
    degree = int(degree)
    if radius > MAX_RADIUS:
        raise ValueError(f"radius={radius:g} exceeds {MAX_RADIUS:g}: "
                         "the float64 monomial form of P is meaningless there")
    if radius == 0.0:
        b = np.zeros(degree + 1)
        b[0] = 1.0  # exp(0) = 1 exactly
    else:
        # (numpy's stubs type chebinterpolate's callable by its coefficient type, not a float function)
        c = np.asarray(cheb.chebinterpolate(lambda t: np.exp(radius * t), degree),  # type: ignore[type-var]
                       dtype=np.float64)  # (g + 1,) Chebyshev coefficients
        b = np.asarray(cheb.cheb2poly(c), dtype=np.float64)  # (g + 1,) monomial coefficients in t
        b = np.pad(b, (0, degree + 1 - b.shape[0]))  # cheb2poly trims trailing zeros (a radius near 0)
    x = _grid(radius, degree)
    t = x / radius if radius > 0 else x
    err = float(np.max(np.abs(poly.polyval(t, b) * np.exp(-x) - 1.0)))
    return ExpApprox(radius=radius, degree=degree, coefficients=tuple(float(v) for v in b), relative_error=err)


@lru_cache(maxsize=1024)
def minimal_approx(radius: float, eps: float, max_degree: int = MAX_DEGREE) -> ExpApprox:
    """The lowest-degree :func:`exp_approx` whose verified relative error (with the grid slack)
    is ≤ eps on [−radius, radius].

    Raises ValueError naming radius, eps and max_degree when no degree up to the cap qualifies.
    """
    radius = _check_radius(radius)
    eps = float(eps)
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    if isinstance(max_degree, bool) or int(max_degree) != max_degree or max_degree < 0:
        raise ValueError(f"max_degree={max_degree} must be an integer ≥ 0")
    if radius > MAX_RADIUS:
        raise ValueError(_radius_too_large(radius, eps, int(max_degree)))
    best = math.inf
    for degree in range(int(max_degree) + 1):
        approx = exp_approx(radius, degree)
        if approx.relative_error * GRID_SLACK <= eps:
            return approx
        best = min(best, approx.relative_error)
    raise ValueError(
        f"no polynomial of degree ≤ max_degree={max_degree} reaches relative error eps={eps:g} for exp "
        f"on [−radius, radius] with radius={radius:g} (best realised error {best:.3g}); "
        f"raise eps, shrink the logit radius (smaller entries or scale) or raise max_degree"
    )
