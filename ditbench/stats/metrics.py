"""E7/E8 metrics: σ-weighted score error against the analytic score (split on/off the subspace),
the subspace error ‖W_B W_Bᵀ − BBᵀ‖_F, and the kernel MMD between two samples.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .mixture import LatentMixture, ou_sigma

ScoreFn = Callable[[Tensor, Tensor], Tensor]  # (x (N, D), t (N,)) → (N, D)


@dataclass(frozen=True)
class ScoreErrors:
    """Root mean σ_t-weighted squared errors over the evaluation points (t ~ U[t0, T], x ~ p_t):
    √E[σ_t‖P(s − ∇log p_t)‖²] with P = BBᵀ (``on``), I − BBᵀ (``off``) or I (``total``);
    ``reference`` is √E[σ_t‖∇log p_t‖²], the size of the target (for relative errors)."""

    total: float
    on: float
    off: float
    reference: float


def score_errors(score: ScoreFn, mixture: LatentMixture, x: Tensor, t: Tensor, chunk: int = 4096) -> ScoreErrors:
    """Errors of ``score`` at the points x (N, D), t (N,), against ``mixture.score`` (module doc).

    Evaluated in float64 in chunks of ``chunk`` points; ``score`` gets x and t in the dtype and on
    the device it is given them (the caller moves them). Non-finite network output raises.
    """
    basis = mixture.basis.double()  # (D, d0)
    sums = torch.zeros(4, dtype=torch.float64)  # total, on, off, reference
    for lo in range(0, x.shape[0], chunk):
        xs, ts = x[lo:lo + chunk], t[lo:lo + chunk]  # (c, D), (c,)
        with torch.no_grad():
            est = score(xs, ts).double().cpu()  # (c, D)
        if not bool(torch.isfinite(est).all()):
            raise FloatingPointError(f"score network returned {int((~torch.isfinite(est)).sum())} non-finite values")
        xd, td = xs.double().cpu(), ts.double().cpu()
        true = mixture.score(xd, td)  # (c, D)
        diff = est - true  # (c, D)
        coords = diff @ basis  # (c, d0) coordinates of BBᵀ diff
        w = ou_sigma(td)  # (c,)
        sq_total = (diff**2).sum(-1)  # (c,)
        sq_on = (coords**2).sum(-1)  # (c,)
        sums += torch.stack([(w * sq_total).sum(), (w * sq_on).sum(), (w * (sq_total - sq_on).clamp_min(0)).sum(),
                             (w * (true**2).sum(-1)).sum()])
    total, on, off, ref = (math.sqrt(float(v) / x.shape[0]) for v in sums)
    return ScoreErrors(total=total, on=on, off=off, reference=ref)


def subspace_error(estimate: Tensor, basis: Tensor) -> float:
    """‖W Wᵀ − B Bᵀ‖_F for W, B (D, d0) with orthonormal columns (√2·‖sin Θ‖_F of the principal
    angles Θ; 0 for the same subspace, √(2 d0) for orthogonal ones)."""
    if estimate.shape != basis.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and basis {tuple(basis.shape)} must have one shape")
    w, b = estimate.detach().double().cpu(), basis.double().cpu()
    # ‖WWᵀ − BBᵀ‖_F² = ‖WᵀW‖² + ‖BᵀB‖² − 2‖WᵀB‖² (orthonormal: 2·d0 − 2‖WᵀB‖_F²), without D×D matrices.
    sq = (w.T @ w).square().sum() + (b.T @ b).square().sum() - 2 * (w.T @ b).square().sum()
    return math.sqrt(max(float(sq), 0.0))


def median_bandwidth(x: Tensor) -> float:
    """The median heuristic: the median pairwise Euclidean distance within x (n, D)."""
    dist = torch.cdist(x.double(), x.double())  # (n, n)
    upper = dist[torch.triu_indices(x.shape[0], x.shape[0], offset=1).unbind(0)]
    return float(upper.median())


def mmd2(x: Tensor, y: Tensor, bandwidth: float, *, unbiased: bool = False) -> float:
    """Squared MMD with the Gaussian kernel exp(−‖u − v‖²/(2ℓ²)) between samples x (n, D), y (m, D).

    ``unbiased=False``: the V-statistic ‖μ̂_x − μ̂_y‖²_H (≥ 0, biased up by O(1/n + 1/m));
    ``unbiased=True``: the U-statistic (unbiased, may be negative).
    """
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth={bandwidth} must be finite and > 0")
    x, y = x.double(), y.double()

    def gram(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(a, b).square() / (2 * bandwidth**2))  # (·, ·)

    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    n, m = x.shape[0], y.shape[0]
    if unbiased:
        xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        return float(xx + yy - 2 * kxy.mean())
    return max(float(kxx.mean() + kyy.mean() - 2 * kxy.mean()), 0.0)
