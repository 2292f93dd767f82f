"""Synthetic latents from the linear latent space of Hu et al. (NeurIPS 2024, DESIGN §3.3), noised
with DiT's diffusion schedule, and the (x_t, t, y) batches the criteria and workloads feed a DiT.

Data model: x = B·h with B ∈ R^{D×d0} of orthonormal columns (D ambient = C·H·W latent entries,
d0 intrinsic dimension) and h ~ N(0, (D/d0)·I), so each entry of x has unit variance on average
(as the SD-VAE latents DiT trains on, after their 0.18215 scaling).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_positive_int

# DiT's training schedule (guided-diffusion "linear"): β from 1e-4 to 0.02 over 1000 steps.
NUM_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02


@dataclass(frozen=True)
class LinearLatentSpace:
    """x = B·h in R^{C×H×W}: ``ambient_shape`` (C, H, W), intrinsic dimension ``latent_dim`` = d0 ≤ D."""

    ambient_shape: tuple[int, int, int]
    latent_dim: int
    seed: int = 0  # seeds the basis B (sampling takes its own generator)

    def __post_init__(self) -> None:
        for i, side in enumerate(self.ambient_shape):
            check_positive_int(f"ambient_shape[{i}]", side)
        check_positive_int("latent_dim", self.latent_dim)
        if self.latent_dim > self.ambient_dim:
            raise ValueError(f"latent_dim d0={self.latent_dim} must be ≤ ambient dimension D={self.ambient_dim}")

    @property
    def ambient_dim(self) -> int:
        """D = C·H·W."""
        return math.prod(self.ambient_shape)

    def basis(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """(D, d0) matrix with orthonormal columns (Q factor of a seeded Gaussian matrix)."""
        gen = torch.Generator().manual_seed(self.seed)
        g = torch.randn(self.ambient_dim, self.latent_dim, generator=gen, dtype=torch.float64)  # (D, d0)
        q, r = torch.linalg.qr(g)  # (D, d0), (d0, d0)
        q = q * torch.sign(torch.diagonal(r))  # fix column signs: a unique, seed-determined basis
        return q.to(dtype)

    def sample(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Tensor:
        """n clean latents x0 = B·h, shape (n, C, H, W)."""
        check_positive_int("n", n)
        h = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)  # (n, d0)
        h = h * math.sqrt(self.ambient_dim / self.latent_dim)  # unit mean-square entries of x
        x = h @ self.basis(torch.float64).T  # (n, D)
        return x.reshape(n, *self.ambient_shape).to(dtype)  # (n, C, H, W)


def alphas_cumprod(dtype: torch.dtype = torch.float64) -> Tensor:
    """ᾱ_t for t = 0…999 under DiT's linear β schedule, shape (1000,)."""
    betas = torch.linspace(BETA_START, BETA_END, NUM_TIMESTEPS, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0).to(dtype)


def add_noise(x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε for x0, noise (N, C, H, W) and integer t (N,)."""
    if x0.shape != noise.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and noise {tuple(noise.shape)} must have the same shape")
    if t.ndim != 1 or t.shape[0] != x0.shape[0]:
        raise ValueError(f"t must have shape ({x0.shape[0]},), got {tuple(t.shape)}")
    if int(t.min()) < 0 or int(t.max()) >= NUM_TIMESTEPS:
        raise ValueError(f"timesteps must lie in [0, {NUM_TIMESTEPS - 1}], got [{int(t.min())}, {int(t.max())}]")
    a = alphas_cumprod()[t.cpu()].to(x0.dtype).to(x0.device).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise  # (N, C, H, W)


@dataclass(frozen=True)
class DiTBatch:
    """Inputs of one DiT forward: x (N, C, H, W) noised latents, t (N,) timesteps, y (N,) labels."""

    x: Tensor
    t: Tensor
    y: Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> DiTBatch:
        return DiTBatch(self.x.to(device=device, dtype=dtype or self.x.dtype), self.t.to(device), self.y.to(device))


def latent_batch(
    in_channels: int, latent_size: int, n: int, *, seed: int = 0, latent_dim: int | None = None,
    num_classes: int = 1000, dtype: torch.dtype = torch.float32,
) -> DiTBatch:
    """A seeded batch: latents from a linear latent space, uniform timesteps in [0, 1000), labels.

    latent_dim: d0; ``None`` uses D/4 (a latent space of a quarter of the ambient dimension).
    """
    shape = (in_channels, latent_size, latent_size)
    space = LinearLatentSpace(shape, latent_dim or max(1, math.prod(shape) // 4), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x0 = space.sample(n, gen, torch.float64)  # (N, C, H, W)
    t = torch.randint(0, NUM_TIMESTEPS, (n,), generator=gen)  # (N,)
    noise = torch.randn(x0.shape, generator=gen, dtype=torch.float64)  # (N, C, H, W)
    y = torch.randint(0, num_classes, (n,), generator=gen)  # (N,)
    return DiTBatch(add_noise(x0, t, noise).to(dtype), t, y)
