"""A Gaussian mixture on a d0-dimensional linear latent space of R^D, and its exact score at every
noise level of the forward Ornstein–Uhlenbeck process (DESIGN §3.3, E7/E8).

Data model (Hu et al. 2024, after Chen et al. 2023): x0 = B·h0 + ξ·(I − BBᵀ)·e with B ∈ R^{D×d0} of
orthonormal columns, h0 ~ Σ_k π_k N(μ_k, diag(s_k²)) and e ~ N(0, I_D) (``off_noise`` ξ = 0: the
data lie exactly on the subspace).

Forward process dX = −½X dt + dW, so x_t = α_t x0 + √σ_t z with α_t = e^{−t/2} and
σ_t = 1 − e^{−t} (the paper's σ(t), a variance). Then Bᵀx_t follows the mixture with components
N(α_t μ_k, α_t² diag(s_k²) + σ_t I), the complement (I − BBᵀ)x_t is independent Gaussian with
variance v_t = α_t² ξ² + σ_t, and the score splits exactly as the paper writes it:

    ∇ log p_t(x) = B ∇ log p_t^h(Bᵀx) − (I − BBᵀ) x / v_t        (v_t = σ_t when ξ = 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_positive_int


def ou_alpha(t: Tensor) -> Tensor:
    """α_t = e^{−t/2}: the mean factor of the forward OU process (t any shape)."""
    return torch.exp(-0.5 * t)


def ou_sigma(t: Tensor) -> Tensor:
    """σ_t = 1 − e^{−t}: the noise variance of the forward OU process (−expm1 keeps small t exact)."""
    return -torch.expm1(-t)


@dataclass(frozen=True)
class MixtureSpec:
    """The law of the data: sizes and how the seeded parameters are drawn."""

    latent_dim: int  # d0
    ambient_dim: int  # D ≥ d0
    components: int = 4  # K
    mean_scale: float = 1.5  # μ_k ~ N(0, mean_scale² I_{d0})
    component_std: float = 0.4  # s_k = component_std · U[0.75, 1.25] per coordinate
    off_noise: float = 0.0  # ξ: standard deviation of the off-subspace part of x0
    seed: int = 0  # draws B, μ, s, π

    def __post_init__(self) -> None:
        check_positive_int("latent_dim", self.latent_dim)
        check_positive_int("ambient_dim", self.ambient_dim)
        check_positive_int("components", self.components)
        if self.latent_dim > self.ambient_dim:
            raise ValueError(f"latent_dim d0={self.latent_dim} must be ≤ ambient_dim D={self.ambient_dim}")
        for name in ("mean_scale", "component_std"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value} must be finite and > 0")
        if not (math.isfinite(self.off_noise) and self.off_noise >= 0):
            raise ValueError(f"off_noise={self.off_noise} must be finite and ≥ 0")

    def build(self, dtype: torch.dtype = torch.float64) -> LatentMixture:
        """Draw B (Q factor of a Gaussian matrix, column signs fixed), means, scales and weights."""
        gen = torch.Generator().manual_seed(self.seed)
        d0, big_d, k = self.latent_dim, self.ambient_dim, self.components
        q, r = torch.linalg.qr(torch.randn(big_d, d0, generator=gen, dtype=torch.float64))  # (D, d0), (d0, d0)
        basis = q * torch.sign(torch.diagonal(r))  # (D, d0) orthonormal columns, seed-determined
        means = torch.randn(k, d0, generator=gen, dtype=torch.float64) * self.mean_scale  # (K, d0)
        stds = self.component_std * (0.75 + 0.5 * torch.rand(k, d0, generator=gen, dtype=torch.float64))  # (K, d0)
        weights = 0.5 + torch.rand(k, generator=gen, dtype=torch.float64)  # (K,)
        return LatentMixture(basis.to(dtype), means.to(dtype), stds.to(dtype), (weights / weights.sum()).to(dtype),
                             self.off_noise)


@dataclass(frozen=True)
class LatentMixture:
    """A drawn mixture: ``basis`` B (D, d0), ``means`` (K, d0), ``stds`` (K, d0), ``weights`` π (K,)."""

    basis: Tensor
    means: Tensor
    stds: Tensor
    weights: Tensor
    off_noise: float = 0.0

    @property
    def latent_dim(self) -> int:
        return self.basis.shape[1]

    @property
    def ambient_dim(self) -> int:
        return self.basis.shape[0]

    # ----- sampling ---------------------------------------------------------------------------
    def sample_latent(self, n: int, gen: torch.Generator) -> Tensor:
        """n clean latents h0, shape (n, d0), in the mixture's dtype."""
        check_positive_int("n", n)
        comp = torch.multinomial(self.weights.double(), n, replacement=True, generator=gen)  # (n,)
        z = torch.randn(n, self.latent_dim, generator=gen, dtype=torch.float64).to(self.means.dtype)  # (n, d0)
        return self.means[comp] + self.stds[comp] * z  # (n, d0)

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        """n clean data points x0 = B h0 + ξ (I − BBᵀ) e, shape (n, D)."""
        x = self.sample_latent(n, gen) @ self.basis.T  # (n, D)
        if self.off_noise > 0:
            e = torch.randn(n, self.ambient_dim, generator=gen, dtype=torch.float64).to(x.dtype)  # (n, D)
            x = x + self.off_noise * (e - (e @ self.basis) @ self.basis.T)  # (n, D)
        return x

    # ----- the noised law at time t -----------------------------------------------------------
    def _latent_params(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Per-point component means (N, K, d0) and variances (N, K, d0) of Bᵀx_t for t (N,)."""
        a = ou_alpha(t)[:, None, None]  # (N, 1, 1)
        var = a**2 * self.stds**2 + ou_sigma(t)[:, None, None]  # (N, K, d0)
        return a * self.means, var  # (N, K, d0) each

    def off_variance(self, t: Tensor) -> Tensor:
        """v_t = α_t² ξ² + σ_t: the variance of each off-subspace direction of x_t, shape of t."""
        return ou_alpha(t) ** 2 * self.off_noise**2 + ou_sigma(t)

    def _log_joint(self, h: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """log π_k + log N(h; α μ_k, var_k) (N, K), and the (N, K, d0) residual and variance."""
        mean, var = self._latent_params(t)  # (N, K, d0) each
        resid = h[:, None, :] - mean  # (N, K, d0)
        log_norm = -0.5 * ((resid**2 / var) + torch.log(2 * math.pi * var)).sum(-1)  # (N, K)
        return torch.log(self.weights) + log_norm, resid, var

    def latent_score(self, h: Tensor, t: Tensor) -> Tensor:
        """∇ log p_t^h(h) for h (N, d0), t (N,): −Σ_k r_k(h) (h − α μ_k)/var_k with posterior r_k."""
        log_joint, resid, var = self._log_joint(h, t)  # (N, K), (N, K, d0) ×2
        resp = torch.softmax(log_joint, dim=-1)  # (N, K) posterior component probabilities
        return -(resp[:, :, None] * resid / var).sum(dim=1)  # (N, d0)

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        """The exact ambient score ∇ log p_t(x) for x (N, D), t (N,) (module doc), shape (N, D)."""
        h = x @ self.basis  # (N, d0)
        on = self.latent_score(h, t) @ self.basis.T  # (N, D)
        off = x - h @ self.basis.T  # (N, D) (I − BBᵀ)x
        return on - off / self.off_variance(t)[:, None]  # (N, D)

    def log_density(self, x: Tensor, t: Tensor) -> Tensor:
        """log p_t(x) for x (N, D), t (N,) → (N,) (the density whose gradient :meth:`score` is)."""
        h = x @ self.basis  # (N, d0)
        log_joint, _, _ = self._log_joint(h, t)  # (N, K)
        off = x - h @ self.basis.T  # (N, D)
        v = self.off_variance(t)  # (N,)
        codim = self.ambient_dim - self.latent_dim
        return torch.logsumexp(log_joint, dim=-1) - 0.5 * ((off**2).sum(-1) / v + codim * torch.log(2 * math.pi * v))

    def noised(self, x0: Tensor, t: Tensor, z: Tensor) -> Tensor:
        """x_t = α_t x0 + √σ_t z for x0, z (N, D), t (N,)."""
        return ou_alpha(t)[:, None] * x0 + ou_sigma(t).sqrt()[:, None] * z  # (N, D)
