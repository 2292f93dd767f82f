"""Linear latent space x = B·h and DiT's noising schedule."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.dit.latent import LinearLatentSpace, add_noise, alphas_cumprod, latent_batch

F64_EPS = torch.finfo(torch.float64).eps


def test_basis_is_orthonormal_and_seeded():
    space = LinearLatentSpace((4, 8, 8), latent_dim=48, seed=5)
    b = space.basis(torch.float64)  # (256, 48)
    assert b.shape == (256, 48)
    # Householder QR: ‖BᵀB − I‖ is a small multiple of D·eps.
    assert float((b.T @ b - torch.eye(48, dtype=torch.float64)).abs().max()) <= 256 * F64_EPS
    assert torch.equal(b, LinearLatentSpace((4, 8, 8), 48, seed=5).basis(torch.float64))
    assert not torch.equal(b, LinearLatentSpace((4, 8, 8), 48, seed=6).basis(torch.float64))


def test_samples_lie_in_the_latent_subspace_with_unit_mean_square(gen):
    space = LinearLatentSpace((4, 8, 8), latent_dim=16)
    x = space.sample(400, gen, torch.float64).reshape(400, -1)  # (n, D)
    b = space.basis(torch.float64)
    residual = x - (x @ b) @ b.T  # component outside span(B)
    assert float(residual.abs().max()) <= 256 * F64_EPS * float(x.abs().max())
    # E[x_i²] = 1 by construction; the sample mean of n·D squared entries (n·d0 = 6400 independent
    # χ² terms, variance 2/6400 for the mean) lies within 5 standard deviations of 1.
    assert float((x**2).mean()) == pytest.approx(1.0, abs=5 * math.sqrt(2 / 6400))


def test_noise_schedule_matches_dit_linear_betas():
    a = alphas_cumprod()
    assert a.shape == (1000,)
    assert float(a[0]) == pytest.approx(1 - 1e-4, abs=F64_EPS)
    assert float(a[-1]) == pytest.approx(math.prod(1 - (1e-4 + i * (0.02 - 1e-4) / 999) for i in range(1000)),
                                          rel=1e-12)
    x0, noise = torch.ones(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    xt = add_noise(x0, torch.tensor([0, 999]), noise)
    assert float(xt[0].max()) == pytest.approx(math.sqrt(1 - 1e-4), abs=F64_EPS)


@pytest.mark.parametrize("kwargs, match", [
    ({"ambient_shape": (4, 2, 2), "latent_dim": 17}, "must be ≤ ambient"),
    ({"ambient_shape": (4, 0, 2), "latent_dim": 1}, "ambient_shape"),
    ({"ambient_shape": (4, 2, 2), "latent_dim": 0}, "latent_dim"),
])
def test_bad_latent_space(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearLatentSpace(**kwargs)


def test_bad_timesteps_are_refused():
    x = torch.zeros(2, 1, 2, 2)
    with pytest.raises(ValueError, match="timesteps"):
        add_noise(x, torch.tensor([0, 1000]), x)
    with pytest.raises(ValueError, match="shape"):
        add_noise(x, torch.tensor([0]), x)


def test_latent_batch_is_seeded_and_shaped():
    a, b = latent_batch(4, 8, 3, seed=1), latent_batch(4, 8, 3, seed=1)
    assert a.x.shape == (3, 4, 8, 8) and a.t.shape == (3,) and a.y.shape == (3,)
    assert torch.equal(a.x, b.x) and torch.equal(a.t, b.t) and torch.equal(a.y, b.y)
    assert int(a.y.max()) < 1000 and int(a.t.max()) < 1000
