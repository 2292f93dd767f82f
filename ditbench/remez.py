"""Relative-error minimax polynomial for exp on [−R, R] by the Remez exchange, in mpmath.

Problem: find P of degree g minimising E_g = max_{|x| ≤ R} |e^{−x}·P(x) − 1|. In the normalised
variable t = x/R the weighted system {t^i·e^{−Rt}} is a Chebyshev (Haar) system, so the best P
is characterised by equioscillation of e(t) = e^{−Rt}P(t) − 1 at g + 2 points, and the Remez
exchange converges to it from any alternating reference (Cheney, *Introduction to Approximation
Theory*, ch. 3).

Why high precision: P(−R) ≈ e^{−R} while P's coefficients (any polynomial basis) are of order
e^{R}, so float64 resolves e(t) near t = −1 only to about u·e^{2R} (5e-8 at R = 10). The
iteration runs in mpmath with enough digits for that cancellation (:func:`_dps`).

Each step levels the error on the reference {t_j} (e(t_j) = (−1)^j·E, in O(g²) via divided
differences), then takes the
local extrema of e — the endpoints ±1 and the roots of e'(t)·e^{Rt} = P'(t) − R·P(t), bracketed
on a Chebyshev-spaced grid — as the next reference. By de la Vallée Poussin's theorem an
alternating e with |e(t_j)| ≥ m at g + 2 points proves E_g ≥ m, and max |e| over all extrema is
E_g's upper bound: the loop stops when the two agree to ``REL_TOL``, so the returned error is a
certified bracket, not an estimate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Stop when max|e| / min|e| over the alternating extrema is within this of 1 (so the returned
# upper bound exceeds the true E_g by at most this relative amount).
REL_TOL = 1e-9
MAX_ITERATIONS = 40
# Newton steps from the previous extrema before falling back to grid bracketing: from a close
# reference Newton converges quadratically (digits double per step, 8 steps ≫ 60 digits).
NEWTON_STEPS = 8


@dataclass(frozen=True)
class Minimax:
    """The relative-error minimax polynomial of one degree on [−radius, radius].

    coefficients: (g + 1,) b_i (as decimal strings at the working precision) with
        P(x) = Σ_i b_i (x/R)^i.
    error_lower, error_upper: the certified bracket on E_g (de la Vallée Poussin / max |e|).
    reference: the g + 2 final alternation points, in t = x/R.
    iterations: exchange steps taken.
    """

    radius: float
    degree: int
    coefficients: tuple[str, ...]
    error_lower: float
    error_upper: float
    reference: tuple[float, ...]
    iterations: int

    def float_coefficients(self) -> tuple[float, ...]:
        """The coefficients rounded to float64 (what the kernels use)."""
        return tuple(float(c) for c in self.coefficients)


def _dps(radius: float, degree: int) -> int:
    """Working digits: 30 beyond the e^{2R} cancellation, the ≤ 2^g growth of the Newton →
    monomial conversion on [−1, 1] and, for small R, the size of E_g itself (about
    2(R/2)^{g+1}/(g+1)!, which must stay far above the working precision)."""
    small = max(0.0, ((degree + 1) * math.log(2 / max(radius, 1e-300)) + math.lgamma(degree + 2)) / math.log(10))
    return 30 + math.ceil((2 * radius + degree * math.log(2)) / math.log(10) + small)


@lru_cache(maxsize=4096)
def remez(radius: float, degree: int) -> Minimax:
    """Relative-error minimax P of degree ``degree`` for exp on [−radius, radius] (radius > 0).

    Raises RuntimeError if the exchange does not converge (never seen for radius ≤ 40, degree ≤ 40).
    """
    import mpmath

    if not radius > 0:
        raise ValueError(f"radius={radius} must be > 0 (radius 0 needs no approximation)")
    ctx = mpmath.mp.clone()
    g = int(degree)
    ctx.dps = 30 if g == 0 else _dps(radius, degree)
    r = ctx.mpf(radius)
    if g == 0:  # closed form: c·e^{−x} − 1 levels at ±R for c = 1/cosh R, E_0 = tanh R
        err = float(ctx.tanh(r))
        return Minimax(radius=float(radius), degree=0, coefficients=(ctx.nstr(1 / ctx.cosh(r), ctx.dps),),
                       error_lower=err, error_upper=err, reference=(-1.0, 1.0), iterations=0)
    ref = [-ctx.cospi(ctx.mpf(j) / (g + 1)) for j in range(g + 2)]  # Chebyshev extrema, ascending
    lo = hi = ctx.mpf(0)
    for step in range(1, MAX_ITERATIONS + 1):
        b = _level(ctx, r, ref)
        ref, errs = _extrema(ctx, r, g, b, ref if step > 1 else None)
        lo, hi = min(abs(e) for e in errs), max(abs(e) for e in errs)
        if hi - lo <= REL_TOL * hi:
            return Minimax(radius=float(radius), degree=g, coefficients=tuple(ctx.nstr(c, ctx.dps) for c in b),
                           error_lower=float(lo), error_upper=float(hi),
                           reference=tuple(float(t) for t in ref), iterations=step)
    raise RuntimeError(f"Remez exchange for exp on [−{radius:g}, {radius:g}] at degree {degree} did not converge "
                       f"in {MAX_ITERATIONS} steps (last bracket [{float(lo):.3g}, {float(hi):.3g}])")


@lru_cache(maxsize=4096)
def error_lower_bound(radius: float, degree: int) -> float:
    """A rigorous lower bound on E_g without iterating: for any degree-g P and g + 2 points,
    Σ_j w_j P(t_j) = 0, and P(t_j) = f_j(1 + e_j) with |e_j| ≤ E give
    E ≥ |Σ_j w_j f_j| / Σ_j |w_j| f_j (de la Vallée Poussin; w_j = 1/Π_{k≠j}(t_j − t_k),
    f_j = e^{R t_j}), evaluated at the Chebyshev extrema. O(g²); lets the degree search skip the
    Remez solve for degrees that cannot reach eps."""
    import mpmath

    if degree == 0:
        return math.tanh(radius)
    ctx = mpmath.mp.clone()
    ctx.dps = _dps(radius, degree)
    r, g = ctx.mpf(radius), int(degree)
    ref = [-ctx.cospi(ctx.mpf(j) / (g + 1)) for j in range(g + 2)]
    f = [ctx.exp(r * t) for t in ref]
    w = [1 / ctx.fprod(ref[j] - ref[k] for k in range(g + 2) if k != j) for j in range(g + 2)]
    return float(abs(ctx.fsum(wj * fj for wj, fj in zip(w, f))) / ctx.fsum(abs(wj) * fj for wj, fj in zip(w, f)))


def _level(ctx: Any, r: Any, ref: list[Any]) -> list[Any]:
    """Monomial coefficients b (ascending, in t) of the P with e(t_j) = (−1)^j·E on the g + 2
    reference points, in O(g²): P's (g + 1)-th divided difference over the reference vanishes,
    Σ_j w_j f_j (1 + (−1)^j E) = 0 with w_j = 1/Π_{k≠j}(t_j − t_k), f_j = e^{R t_j}, which fixes E;
    P then interpolates f_j(1 + (−1)^j E) at the first g + 1 points (Newton form → monomials)."""
    size = len(ref)
    f = [ctx.exp(r * t) for t in ref]
    w = [1 / ctx.fprod(ref[j] - ref[k] for k in range(size) if k != j) for j in range(size)]
    sign = [1 if j % 2 == 0 else -1 for j in range(size)]
    level = -ctx.fsum(wj * fj for wj, fj in zip(w, f)) / ctx.fsum(s * wj * fj for s, wj, fj in zip(sign, w, f))
    nodes = ref[:-1]
    dd = [fj * (1 + s * level) for fj, s in zip(f, sign)][:-1]  # values → divided differences in place
    for order in range(1, len(nodes)):
        for j in range(len(nodes) - 1, order - 1, -1):
            dd[j] = (dd[j] - dd[j - 1]) / (nodes[j] - nodes[j - order])
    coeffs = [dd[-1]]  # Horner on the Newton form: c ← c·(t − t_k) + dd_k, in monomials
    for k in range(len(nodes) - 2, -1, -1):
        shifted = [ctx.mpf(0)] + coeffs  # c·t
        for i, c in enumerate(coeffs):
            shifted[i] -= nodes[k] * c
        shifted[0] += dd[k]
        coeffs = shifted
    return coeffs


def _poly(ctx: Any, coeffs: list[Any], t: Any) -> Any:
    acc = ctx.mpf(0)
    for c in reversed(coeffs):
        acc = acc * t + c
    return acc


# Root finding runs in fixed point (Python integers scaled by 2^bits): the same digits as the
# mpmath context at a tenth of mpf's per-operation cost (Horner dominates the run time).

def _fix(ctx: Any, x: Any, bits: int) -> int:
    return int(ctx.nint(ctx.ldexp(x, bits)))


def _horner(coeffs: list[int], t: int, bits: int) -> int:
    acc = 0
    for c in reversed(coeffs):
        acc = ((acc * t) >> bits) + c
    return acc


def _root(h: list[int], dh: list[int], a: int, b: int, bits: int) -> int:
    """The root of h in (a, b) (h(a)·h(b) < 0), all fixed point: Newton, bisection when it leaves."""
    ha = _horner(h, a, bits)
    t = (a + b) // 2
    while b - a > 2:
        ht = _horner(h, t, bits)
        if ht == 0:
            return t
        if (ht < 0) == (ha < 0):
            a, ha = t, ht
        else:
            b = t
        slope = _horner(dh, t, bits)
        nxt = t - (ht << bits) // slope if slope != 0 else (a + b) // 2
        if not (a < nxt < b):
            nxt = (a + b) // 2
        if abs(nxt - t) <= 2:
            return nxt
        t = nxt
    return t


def _newton(h: list[int], dh: list[int], t: int, bits: int) -> int | None:
    """Unbracketed Newton from ``t`` (None if it does not settle in NEWTON_STEPS): the fast path
    once the reference is close (the extrema then move little and Newton converges quadratically)."""
    for _ in range(NEWTON_STEPS):
        slope = _horner(dh, t, bits)
        if slope == 0:
            return None
        step = (_horner(h, t, bits) << bits) // slope
        t -= step
        if abs(step) <= 2:
            return t
    return None


def _extrema(ctx: Any, r: Any, g: int, b: list[Any], guess: list[Any] | None) -> tuple[list[Any], list[Any]]:
    """The next reference: g + 2 alternating local extrema of e on [−1, 1] (with e there).
    ``guess``: the previous reference, whose interior points seed Newton (grid bracketing if
    that fails to give g distinct interior roots with alternating e)."""
    size, bits = g + 2, math.ceil(ctx.prec * 1.2)
    dp = [(i + 1) * b[i + 1] for i in range(g)] + [ctx.mpf(0)]  # P'
    h_mp = [dp[i] - r * b[i] for i in range(g + 1)]  # P' − R·P: zero where e' = 0
    h = [_fix(ctx, c, bits) for c in h_mp]
    dh = [(i + 1) * h[i + 1] for i in range(g)] or [0]
    one = 1 << bits

    def err(t: int) -> Any:
        x = ctx.ldexp(ctx.mpf(t), -bits)
        return ctx.exp(-r * x) * _poly(ctx, b, x) - 1

    if guess is not None:
        seeds = [_newton(h, dh, _fix(ctx, t, bits), bits) for t in guess[1:-1]]
        found = [t for t in seeds if t is not None]
        if len(found) == len(seeds):
            points = [-one, *found, one]
            if all(u < v for u, v in zip(points, points[1:])):
                values = [err(t) for t in points]
                if all((u < 0) != (v < 0) for u, v in zip(values, values[1:])):
                    return [ctx.ldexp(ctx.mpf(t), -bits) for t in points], values
    cells = 4 * (g + 1)
    while True:
        grid = [_fix(ctx, -ctx.cospi(ctx.mpf(k) / cells), bits) for k in range(cells + 1)]
        hv = [_horner(h, t, bits) for t in grid]
        roots = []
        for k in range(cells):
            if hv[k] * hv[k + 1] < 0:
                roots.append(_root(h, dh, grid[k], grid[k + 1], bits))
            elif hv[k + 1] == 0 and k + 1 < cells:
                roots.append(grid[k + 1])
        candidates = [grid[0], *roots, grid[-1]]
        points, values = _alternating(candidates, [err(t) for t in candidates])
        if len(points) >= size or cells > 64 * (g + 1):
            break
        cells *= 2  # two roots in one cell: refine
    if len(points) < size:
        raise RuntimeError(f"Remez: found {len(points)} alternating extrema, need {size}")
    while len(points) > size:  # drop the smaller end extremum (keeps alternation)
        if abs(values[0]) < abs(values[-1]):
            points, values = points[1:], values[1:]
        else:
            points, values = points[:-1], values[:-1]
    return [ctx.ldexp(ctx.mpf(t), -bits) for t in points], values


def _alternating(points: list[Any], values: list[Any]) -> tuple[list[Any], list[Any]]:
    """Merge runs of equal sign, keeping the largest |e| of each run."""
    out_p: list[Any] = []
    out_v: list[Any] = []
    for t, e in zip(points, values):
        if out_v and (e >= 0) == (out_v[-1] >= 0):
            if abs(e) > abs(out_v[-1]):
                out_p[-1], out_v[-1] = t, e
        else:
            out_p.append(t)
            out_v.append(e)
    return out_p, out_v
