"""Linear latent space x = B·h and DiT's noising schedule."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.dit.latent import BETA_END, BETA_START, LinearLatentSpace, add_noise, alphas_cumprod, latent_batch
from tolerances import assert_close, gamma, orthonormality_bound, unit_roundoff

F64_EPS = torch.finfo(torch.float64).eps


def test_basis_is_orthonormal_and_seeded():
    space = LinearLatentSpace((4, 8, 8), latent_dim=48, seed=5)
    b = space.basis(torch.float64)  # (256, 48)
    assert b.shape == (256, 48)
    # Householder QR of a (256, 48) matrix: Higham §19.3's bound on Q̂ᵀQ̂ − I (tolerances.orthonormality_bound).
    assert_close(b.T @ b, torch.eye(48, dtype=torch.float64), atol=orthonormality_bound(256, 48), what="BᵀB")
    assert torch.equal(b, LinearLatentSpace((4, 8, 8), 48, seed=5).basis(torch.float64))
    assert not torch.equal(b, LinearLatentSpace((4, 8, 8), 48, seed=6).basis(torch.float64))


def test_samples_lie_in_the_latent_subspace_with_unit_mean_square(gen):
    space = LinearLatentSpace((4, 8, 8), latent_dim=16)
    x = space.sample(400, gen, torch.float64).reshape(400, -1)  # (n, D)
    b = space.basis(torch.float64)
    residual = x - (x @ b) @ b.T  # component outside span(B)
    assert_close(residual, torch.zeros_like(residual), atol=_projection_tolerance(x, b), what="x − BBᵀx")
    # E[x_i²] = 1 by construction; the sample mean of n·D squared entries (n·d0 = 6400 independent
    # χ² terms, variance 2/6400 for the mean) lies within 5 standard deviations of 1.
    assert float((x**2).mean()) == pytest.approx(1.0, abs=5 * math.sqrt(2 / 6400))


def _projection_tolerance(x, b):
    """Per-row bound on x − (x B̂)B̂ᵀ for samples x = h B̂ᵀ, all in float64 (rows of x ``(n, D)``,
    B̂ ``(D, d0)``), in the 2-norm of each row (which bounds its max norm). With E = B̂ᵀB̂ − I,
    ‖E‖₂ ≤ d0·‖E‖_max: the exact residual of B̂h is B̂Eh (≤ d0‖E‖_max·‖h‖); each of the three
    products (x = hB̂ᵀ, xB̂, (xB̂)B̂ᵀ) adds γ_len·‖|B̂|‖₂·‖·‖ with ‖|B̂|‖₂ ≤ ‖B̂‖_F ≈ √d0, the
    subtraction 2u; ‖h‖ ≈ ‖x‖ and the (1 + ‖E‖) factors (‖E‖ < 1e-9) are covered by 1.01."""
    big_d, d0 = b.shape
    e = float((b.T @ b - torch.eye(d0, dtype=b.dtype)).abs().max())
    rel = d0 * e + 2 * math.sqrt(d0) * (gamma(big_d) + 2 * gamma(d0)) + 2 * unit_roundoff()
    return 1.01 * rel * torch.linalg.vector_norm(x, dim=-1, keepdim=True)  # (n, 1)


def test_noise_schedule_matches_dit_linear_betas():
    a = alphas_cumprod()
    assert a.shape == (1000,)
    assert float(a[0]) == pytest.approx(1 - 1e-4, abs=F64_EPS)  # the same one rounding of 1 − β₀ on both sides
    betas = [BETA_START + i * (BETA_END - BETA_START) / 999 for i in range(1000)]
    # Each βᵢ, by linspace or by this formula, is within γ₃·β_max of the true one (a difference, a
    # division, a product, a sum), 1 − βᵢ adds u; over 1000 factors ≥ 1 − β_max, the relative errors
    # add, and each side's 999 products add γ₉₉₉ (Higham Lemma 3.3).
    per_factor = 2 * (gamma(3) * BETA_END + unit_roundoff()) / (1 - BETA_END)
    assert_close(float(a[-1]), math.prod(1 - beta for beta in betas),
                 rtol=1000 * per_factor + 2 * gamma(999), what="ᾱ at t = 999")
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
