"""Nyströmformer (Xiong et al. 2021): softmax attention through l landmark queries and keys.

With Q̃ (l, d), K̃ (l, d) the segment means of Q and K (l contiguous, near-equal segments),

    F = softmax(s·Q K̃ᵀ) (n, l),   A = softmax(s·Q̃ K̃ᵀ) (l, l),   B = softmax(s·Q̃ Kᵀ) (l, m),
    out = F · A⁺ · (B V),

with A⁺ the Moore–Penrose pseudo-inverse from the iterative scheme of Razavi et al. (2014) that the
paper uses. Approximates softmax attention; exact (up to the pinv iteration) when l = n = m, where
F = A = B and A·A⁺·A = A. No depthwise-convolution skip connection (the paper's optional add-on).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ... import theory
from ..registry import Kernel, Problem, register
from ..._checks import Param
from ._common import int_reasons, prepare, raise_if


def iterative_pinv(a: Tensor, iterations: int = 6) -> Tensor:
    """Moore–Penrose pseudo-inverse of ``a (..., l, l)`` by Razavi et al.'s iteration.

    Z₀ = aᵀ/(‖a‖₁·‖a‖_∞) (so ‖I − aZ₀‖₂ < 1 and the iteration converges to a⁺ for any a),
    Z_{k+1} = ¼·Z_k·(13I − aZ_k(15I − aZ_k(7I − aZ_k))). Each step costs four l×l products (8l³ FLOPs).
    Converged residual shrinks like ‖I − aZ_k‖ ≈ ‖I − aZ₀‖^(4^k) for well-conditioned a.
    """
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)  # (l, l)
    norm1 = a.abs().sum(dim=-2).amax(dim=-1, keepdim=True)  # (..., 1): max column sum
    norm_inf = a.abs().sum(dim=-1).amax(dim=-1, keepdim=True)  # (..., 1): max row sum
    z = a.transpose(-1, -2) / (norm1 * norm_inf)[..., None]  # (..., l, l)
    for _ in range(iterations):
        az = a @ z  # (..., l, l)
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))  # (..., l, l)
    return z


def segment_means(x: Tensor, segments: int) -> Tensor:
    """Means of ``segments`` contiguous, near-equal segments of ``x (..., n, d)`` → ``(..., segments, d)``.

    Token i belongs to segment ⌊i·segments/n⌋ (every segment non-empty when segments ≤ n).
    """
    n = x.shape[-2]
    ids = torch.arange(n, device=x.device) * segments // n  # (n,)
    sums = torch.zeros(*x.shape[:-2], segments, x.shape[-1], dtype=x.dtype, device=x.device)
    sums.index_add_(-2, ids, x)  # (..., segments, d)
    counts = torch.bincount(ids, minlength=segments).to(x.dtype)  # (segments,)
    return sums / counts[:, None]


def _reasons(n: int, m: int, landmarks: object, pinv_iterations: object) -> list[str]:
    return int_reasons("landmarks", landmarks, 1, min(n, m), f"at most min(n={n}, m={m}) segments") + int_reasons(
        "pinv_iterations", pinv_iterations, 1
    )


def nystrom_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, landmarks: int = 64, pinv_iterations: int = 6
) -> Tensor:
    """Nyström approximation of softmax(scale·q kᵀ) v with segment-mean landmarks.

    Args:
        q: ``(..., n, d)``; k: ``(..., m, d)``; v: ``(..., m, dv)``; leading dims broadcast.
        scale: logit scale; ``None`` means 1/√d.
        landmarks: l ≤ min(n, m), the number of landmark queries/keys.
        pinv_iterations: steps of the iterative pseudo-inverse (paper default 6).

    Returns ``(..., n, dv)``; raises FloatingPointError if the result is not finite.
    """
    q, k, v, s = prepare(q, k, v, scale)
    raise_if(_reasons(q.shape[-2], k.shape[-2], landmarks, pinv_iterations))
    q_land = segment_means(q, landmarks)  # (..., l, d)
    k_land = segment_means(k, landmarks)  # (..., l, d)
    f = torch.softmax(s * q @ k_land.transpose(-1, -2), dim=-1)  # (..., n, l)
    a = torch.softmax(s * q_land @ k_land.transpose(-1, -2), dim=-1)  # (..., l, l)
    b = torch.softmax(s * q_land @ k.transpose(-1, -2), dim=-1)  # (..., l, m)
    out = f @ (iterative_pinv(a, pinv_iterations) @ (b @ v))  # (..., n, dv)
    if not bool(torch.isfinite(out).all()):
        raise FloatingPointError("nystrom: non-finite output (pseudo-inverse diverged); refusing to return it")
    return out


def _cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    return theory.nystrom_cost(p.n, p.m, p.d, p.dv, params["landmarks"], params["pinv_iterations"],
                               itemsize=p.dtype.itemsize)


NYSTROM = register(Kernel(
    name="nystrom", fn=nystrom_attention, exact=False,
    description="Nyströmformer (segment-mean landmarks, iterative pinv, no conv skip); approximates softmax attention",
    params={"landmarks": 64, "pinv_iterations": 6}, cost=_cost,
    schema={"landmarks": Param("int", low=1), "pinv_iterations": Param("int", low=1)},
    limits=lambda p, params: _reasons(p.n, p.m, params["landmarks"], params["pinv_iterations"]),
    describe=lambda p, params, inputs=None, rows=None: {"rank": params["landmarks"]},  # what ran: the feature count
))
