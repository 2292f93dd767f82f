"""Performer / FAVOR+ (Choromanski et al. 2021, "Rethinking attention with Performers").

Positive random features for the softmax kernel: with x = √s·q, y = √s·k and ω ~ N(0, I_d),

    φ(x) = exp(Ωx − ‖x‖²/2) / √M,      E[φ(x)ᵀφ(y)] = exp(⟨x, y⟩) = exp(s·⟨q, k⟩),

so softmax attention ≈ D⁻¹·φ(Q)(φ(K)ᵀV) in O((n + m)·M·(d + dv)) time. The M rows of Ω are drawn
in orthogonal blocks of d (Haar-random orthonormal rows rescaled by independent χ_d norms), so each
row is still exactly N(0, I_d) and the estimator stays unbiased while its variance drops.

Stabiliser (as the reference implementation, without its additive 1e-6, which biases the answer):
query features subtract their own row maximum of Ωx (a per-row factor that cancels in D⁻¹) and
drop ‖x‖²/2 (also per row); key features subtract the maximum of Ωy − ‖y‖²/2 over the keys (a
global factor that cancels), carried as a running maximum while keys are streamed.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ... import theory
from ..._checks import SEED, Param, check_allocation
from ..registry import Kernel, Problem, register
from ._common import cpu_generator, feature_attention, int_reasons, prepare, raise_if, rows_per_tile


def orthogonal_gaussian(d: int, features: int, gen: torch.Generator, draws: tuple[int, ...] = ()) -> Tensor:
    """Ω ``(*draws, features, d)`` float64 on the CPU: blocks of d orthogonal rows, each row ~ N(0, I_d).

    Each block is Haar-orthonormal (QR of a Gaussian matrix with the sign of diag(R) fixed, so the
    directions are uniform on the sphere) times independent χ_d lengths (norms of Gaussian vectors).
    ``draws`` gives independent Ω's in one batched QR (for statistics over many draws).
    """
    blocks = math.ceil(features / d)
    g = torch.randn(*draws, blocks, d, d, generator=gen, dtype=torch.float64)  # (..., blocks, d, d)
    qmat, rmat = torch.linalg.qr(g)  # (..., blocks, d, d) each
    signs = torch.sign(torch.diagonal(rmat, dim1=-2, dim2=-1))  # (..., blocks, d)
    qmat = qmat * torch.where(signs == 0, 1.0, signs)[..., None, :]  # Haar-distributed columns
    gauss = torch.randn(*draws, blocks, d, d, generator=gen, dtype=torch.float64)
    lengths = torch.linalg.vector_norm(gauss, dim=-1)  # (..., blocks, d): χ_d
    rows = qmat.transpose(-1, -2) * lengths[..., None]  # (..., blocks, d, d): orthogonal rows
    return rows.flatten(-3, -2)[..., :features, :]  # (..., features, d)


def orthogonal_features(d: int, features: int, seed: int) -> Tensor:
    """The kernel's Ω ``(features, d)`` for ``seed`` (see :func:`orthogonal_gaussian`)."""
    return orthogonal_gaussian(d, features, cpu_generator(seed))


def positive_features(x: Tensor, omega: Tensor) -> Tensor:
    """Unstabilised FAVOR+ features φ(x) = exp(Ωx − ‖x‖²/2)/√M: ``x (..., n, d)``, Ω ``(..., M, d)``
    → ``(..., n, M)``. For analysis and tests (may under/overflow); the kernel uses the stabilised form.
    """
    proj = x @ omega.transpose(-1, -2)  # (..., n, M)
    half_norm = 0.5 * (x * x).sum(dim=-1, keepdim=True)  # (..., n, 1)
    return torch.exp(proj - half_norm) / math.sqrt(omega.shape[-2])  # (..., n, M)


def _reasons(features: object, seed: object) -> list[str]:
    return int_reasons("features", features, 1) + int_reasons("seed", seed, 0)


def performer_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, features: int = 256, seed: int = 0
) -> Tensor:
    """FAVOR+ approximation of softmax(scale·q kᵀ) v with ``features`` positive orthogonal random features.

    Args:
        q: ``(..., n, d)``; k: ``(..., m, d)``; v: ``(..., m, dv)``; leading dims broadcast.
        scale: logit scale; ``None`` means 1/√d.
        features: M, the number of random features (any M ≥ 1; blocks of d are orthogonal).
        seed: seeds Ω (drawn on the CPU in float64, so results agree across devices).

    Returns ``(..., n, dv)``; raises NormaliserError if a normaliser underflows to 0.
    """
    q, k, v, s = prepare(q, k, v, scale)
    raise_if(_reasons(features, seed))
    d = q.shape[-1]  # Ω is drawn in float64 as ⌈M/d⌉ blocks of two (d, d) Gaussians, then cast
    check_allocation(f"performer features={features}", float(3 * math.ceil(features / d) * d * d * 8), "cpu")
    omega = orthogonal_features(q.shape[-1], features, seed).to(device=q.device, dtype=q.dtype)  # (M, d)
    root = math.sqrt(s)

    def query_features(x: Tensor) -> Tensor:
        proj = (root * x) @ omega.T  # (..., b, M)
        return torch.exp(proj - proj.amax(dim=-1, keepdim=True))  # per-row factor cancels in D⁻¹

    def key_features(y: Tensor) -> tuple[Tensor, Tensor]:
        y = root * y  # (..., b, d)
        logits = y @ omega.T - 0.5 * (y * y).sum(dim=-1, keepdim=True)  # (..., b, M)
        top = logits.amax(dim=(-1, -2), keepdim=True)  # (..., 1, 1)
        return torch.exp(logits - top), top

    return feature_attention(q, k, v, query_features, key_features, features, "performer")


def _cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    features = params["features"]
    return theory.performer_cost(p.n, p.m, p.d, p.dv, features, itemsize=p.dtype.itemsize,
                                 tile=rows_per_tile(features))


PERFORMER = register(Kernel(
    name="performer", fn=performer_attention, exact=False,
    description="Performer FAVOR+ (positive orthogonal random features); approximates softmax attention",
    params={"features": 256, "seed": 0}, schema={"features": Param("int", low=1), "seed": SEED}, cost=_cost,
    limits=lambda p, params: _reasons(params["features"], params["seed"]),
    describe=lambda p, params, inputs=None, rows=None: {"rank": params["features"]},  # what ran: the feature count
))
