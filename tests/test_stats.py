"""ditbench.stats: the analytic mixture score, the metrics on known cases, the networks, a tiny
training run (E7/E8). Everything here runs in seconds."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.stats.metrics import median_bandwidth, mmd2, score_errors, subspace_error
from ditbench.stats.mixture import MixtureSpec, ou_alpha, ou_sigma
from ditbench.stats.networks import (
    AmbientScoreNet,
    LatentScoreNet,
    NetworkSpec,
    _transformer_count,
    build_network,
    latent_count,
    matched_width,
    parameter_count,
)
from ditbench.stats.sampling import reverse_sde
from ditbench.stats.train import TrainConfig, train_dsm

EPS64 = torch.finfo(torch.float64).eps


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: torch.Tensor | float, what: str) -> None:
    """Elementwise |actual − expected| ≤ atol; on failure name the worst element, both values and the share."""
    diff = (actual - expected).abs()
    bad = diff > atol
    if bool(bad.any()):
        i = int(torch.argmax(diff / torch.as_tensor(atol, dtype=diff.dtype).expand_as(diff)))
        flat_a, flat_e = actual.flatten(), expected.flatten()
        limit = torch.as_tensor(atol, dtype=diff.dtype).expand_as(diff).flatten()[i]
        raise AssertionError(f"{what}: worst element {i}: {float(flat_a[i])!r} vs {float(flat_e[i])!r} "
                             f"(|diff| {float(diff.flatten()[i]):.3g} > {float(limit):.3g}); "
                             f"{int(bad.sum())}/{bad.numel()} elements fail")


##################################################################################################
# the analytic score against autograd of an independently built log-density
##################################################################################################
def torch_mixture(mix, t: float):
    """p_t as a torch.distributions mixture of D-dimensional Gaussians (no decomposition used)."""
    a, s = math.exp(-t / 2), -math.expm1(-t)
    b = mix.basis
    eye = torch.eye(mix.ambient_dim, dtype=torch.float64)
    off = eye - b @ b.T  # (D, D)
    covs = torch.stack([a**2 * (b @ torch.diag(sd**2) @ b.T + mix.off_noise**2 * off) + s * eye
                        for sd in mix.stds])  # (K, D, D)
    comps = torch.distributions.MultivariateNormal(a * mix.means @ b.T, covariance_matrix=covs)
    return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(probs=mix.weights), comps), covs


@pytest.mark.parametrize("off_noise", [0.0, 0.3])
@pytest.mark.parametrize("t", [0.01, 0.3, 5.0])
def test_score_matches_autograd_of_log_density(off_noise: float, t: float, gen: torch.Generator) -> None:
    mix = MixtureSpec(latent_dim=3, ambient_dim=7, components=3, off_noise=off_noise, seed=11).build()
    dist, covs = torch_mixture(mix, t)
    x0 = mix.sample(40, gen)  # (40, D)
    x = torch.cat([mix.noised(x0, torch.full((40,), t, dtype=torch.float64), torch.randn(x0.shape, generator=gen,
                                                                                          dtype=torch.float64)),
                   8.0 * torch.randn(4, 7, generator=gen, dtype=torch.float64)])  # far points: saturated posteriors
    x.requires_grad_(True)
    ref = torch.autograd.grad(dist.log_prob(x).sum(), x)[0]  # (N, D)
    tt = torch.full((x.shape[0],), t, dtype=torch.float64)
    got = mix.score(x.detach(), tt)
    # Both sides apply Σ_k⁻¹ in float64: a Cholesky solve has backward error γ_{3D+1} ≈ (3D+1)·u
    # (Higham, Thm 10.4), amplified by κ(Σ_k) on a vector of 2-norm ≤ ‖x − m_k‖/λ_min; doubled for
    # the two independent evaluations, and 4× for the posterior weights (which sum to 1).
    eig = torch.linalg.eigvalsh(covs)  # (K, D)
    kappa, lam = float(eig.max() / eig.min()), float(eig.min())
    xd = x.detach()
    scale = (xd.norm(dim=-1, keepdim=True) + mix.means.norm(dim=-1).max()) / lam + ref.norm(dim=-1, keepdim=True)
    bound = 8 * (3 * 7 + 1) * kappa * EPS64
    assert_close(got, ref, bound * scale, f"score at t={t}, ξ={off_noise}")
    logp = mix.log_density(xd, tt)
    ref_logp = dist.log_prob(xd)
    assert_close(logp, ref_logp, bound * (ref_logp.abs() + scale.squeeze(-1) * xd.norm(dim=-1)),
                 "log density")


def test_latent_part_of_data_follows_the_mixture(gen: torch.Generator) -> None:
    """Bᵀx0 recovers h0 exactly and the complement is ξ-sized: the data lie on (near) the subspace."""
    mix = MixtureSpec(latent_dim=2, ambient_dim=9, off_noise=0.0, seed=3).build()
    x = mix.sample(500, gen)
    resid = x - (x @ mix.basis) @ mix.basis.T
    assert float(resid.abs().max()) <= 64 * 9 * EPS64 * float(x.abs().max())
    assert torch.allclose(mix.basis.T @ mix.basis, torch.eye(2, dtype=torch.float64), atol=16 * 9 * EPS64)


def test_schedule_small_t_is_exact() -> None:
    t = torch.tensor([1e-12, 1.0], dtype=torch.float64)
    assert float(ou_sigma(t)[0]) == pytest.approx(1e-12, rel=1e-9)
    assert float(ou_alpha(t)[1] ** 2 + ou_sigma(t)[1]) == pytest.approx(1.0, abs=4 * EPS64)


@pytest.mark.parametrize("field,value", [("latent_dim", 0), ("components", 0), ("off_noise", -1.0),
                                         ("mean_scale", math.nan)])
def test_mixture_spec_rejects_bad_values(field: str, value: float) -> None:
    kwargs = {"latent_dim": 2, "ambient_dim": 4, field: value}
    with pytest.raises(ValueError, match=field):
        MixtureSpec(**kwargs)
    with pytest.raises(ValueError, match="must be ≤ ambient_dim"):
        MixtureSpec(latent_dim=5, ambient_dim=4)


##################################################################################################
# metrics on known cases
##################################################################################################
def _eval_points(mix, gen, count=512):
    x0 = mix.sample(count, gen)
    t = 0.01 + 4.99 * torch.rand(count, generator=gen, dtype=torch.float64)
    return mix.noised(x0, t, torch.randn(x0.shape, generator=gen, dtype=torch.float64)), t


def test_perfect_score_has_zero_error(gen: torch.Generator) -> None:
    mix = MixtureSpec(latent_dim=2, ambient_dim=6, seed=1).build()
    x, t = _eval_points(mix, gen)
    err = score_errors(mix.score, mix, x, t, chunk=100)
    assert (err.total, err.on, err.off) == (0.0, 0.0, 0.0)
    assert err.reference > 0


def test_constant_offsets_give_known_on_and_off_errors(gen: torch.Generator) -> None:
    """s = ∇log p + c·b (b on the subspace) + e·u (u ⟂ subspace): on = |c|·√E σ_t, off = |e|·√E σ_t."""
    mix = MixtureSpec(latent_dim=2, ambient_dim=6, seed=2).build()
    x, t = _eval_points(mix, gen)
    b = mix.basis[:, 0]
    u = torch.randn(6, generator=gen, dtype=torch.float64)
    u = u - mix.basis @ (mix.basis.T @ u)
    u = u / u.norm()
    c, e = 0.7, -0.2
    err = score_errors(lambda xx, tt: mix.score(xx, tt) + c * b + e * u, mix, x, t)
    root = math.sqrt(float(ou_sigma(t).mean()))
    # the offset is recovered from a difference of O(‖score‖) numbers: error ≲ D·u·max‖score‖ per point
    tol = 64 * 6 * EPS64 * float(mix.score(x, t).abs().max())
    assert err.on == pytest.approx(abs(c) * root, abs=tol)
    assert err.off == pytest.approx(abs(e) * root, abs=tol)
    assert err.total == pytest.approx(math.hypot(c, e) * root, abs=tol)


def test_score_errors_refuse_non_finite_output(gen: torch.Generator) -> None:
    mix = MixtureSpec(latent_dim=2, ambient_dim=4).build()
    x, t = _eval_points(mix, gen, 8)
    with pytest.raises(FloatingPointError, match="non-finite"):
        score_errors(lambda xx, tt: xx * math.nan, mix, x, t)


def _orthonormal(dim: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return q


@pytest.mark.parametrize("theta", [0.0, 0.3, math.pi / 4, math.pi / 2])
def test_subspace_error_of_a_rotated_subspace(theta: float, gen: torch.Generator) -> None:
    """Rotating one basis vector by θ out of the subspace gives ‖WWᵀ − BBᵀ‖_F = √2·sin θ."""
    q = _orthonormal(10, gen)
    b = q[:, :3]
    w = b.clone()
    w[:, 0] = math.cos(theta) * q[:, 0] + math.sin(theta) * q[:, 3]
    expected = math.sqrt(2) * math.sin(theta)
    assert subspace_error(w, b) == pytest.approx(expected, abs=64 * 10 * EPS64)
    direct = float(torch.linalg.matrix_norm(w @ w.T - b @ b.T))
    assert direct == pytest.approx(expected, abs=64 * 10 * EPS64)


def test_subspace_error_ignores_rotation_within_and_maxes_when_orthogonal(gen: torch.Generator) -> None:
    q = _orthonormal(8, gen)
    b = q[:, :3]
    inner = _orthonormal(3, gen)
    assert subspace_error(b @ inner, b) == pytest.approx(0.0, abs=64 * 8 * EPS64)
    assert subspace_error(q[:, 3:6], b) == pytest.approx(math.sqrt(6), abs=64 * 8 * EPS64)
    with pytest.raises(ValueError, match="one shape"):
        subspace_error(q[:, :2], b)


def test_mmd_matches_closed_form_for_shifted_gaussians(gen: torch.Generator) -> None:
    """MMD² between N(0, s²I) and N(μ, s²I) under a Gaussian kernel of width ℓ is
    2c(1 − exp(−‖μ‖²/(2(ℓ² + 2s²)))), c = (ℓ²/(ℓ² + 2s²))^{d/2}. The tolerance is 5 standard
    errors of the U-statistic, estimated from 8 disjoint blocks."""
    d, s, ell, n = 3, 0.8, 1.3, 2000
    mu = torch.tensor([0.6, -0.4, 0.2], dtype=torch.float64)
    x = s * torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = mu + s * torch.randn(n, d, generator=gen, dtype=torch.float64)
    c = (ell**2 / (ell**2 + 2 * s**2)) ** (d / 2)
    expected = 2 * c * (1 - math.exp(-float(mu @ mu) / (2 * (ell**2 + 2 * s**2))))
    blocks = torch.tensor([mmd2(x[i::8], y[i::8], ell, unbiased=True) for i in range(8)])
    tol = 5 * float(blocks.std()) / math.sqrt(8)
    assert mmd2(x, y, ell, unbiased=True) == pytest.approx(expected, abs=tol)
    assert mmd2(x, x, ell) == pytest.approx(0.0, abs=16 * EPS64)
    assert median_bandwidth(x) > 0
    with pytest.raises(ValueError, match="bandwidth"):
        mmd2(x, y, 0.0)


##################################################################################################
# networks
##################################################################################################
@pytest.mark.parametrize("ambient_dim,latent_dim", [(8, 2), (32, 4), (64, 8)])
def test_parameter_counts_and_matching(ambient_dim: int, latent_dim: int) -> None:
    spec = NetworkSpec("latent", ambient_dim, latent_dim, hidden=16, depth=1)
    lat = LatentScoreNet(spec)
    assert parameter_count(lat) == latent_count(spec)
    width = matched_width(spec)
    amb = AmbientScoreNet(spec)
    count = _transformer_count(spec.tokens, ambient_dim // spec.tokens, width, 1, spec.mlp_ratio)
    assert parameter_count(amb) == count
    for other in (width - spec.heads, width + spec.heads):  # no neighbouring width is closer
        gap = abs(_transformer_count(spec.tokens, ambient_dim // spec.tokens, other, 1, spec.mlp_ratio)
                  - latent_count(spec))
        assert abs(count - latent_count(spec)) <= gap


def test_latent_network_has_the_papers_form(gen: torch.Generator) -> None:
    """Untrained (adaLN-Zero: f = 0) the latent network is −x/σ_t, and W_B has orthonormal columns."""
    net = build_network(NetworkSpec("latent", 12, 3, hidden=8, depth=1), seed=0)
    w = net.projection.detach()  # built in float32: orthonormal to float32 rounding (≲ D·u₃₂ per entry)
    assert torch.allclose(w.T @ w, torch.eye(3), rtol=0, atol=16 * 12 * torch.finfo(torch.float32).eps)
    net = net.double()
    x = torch.randn(5, 12, generator=gen, dtype=torch.float64)
    t = torch.tensor([0.01, 0.1, 1.0, 2.0, 5.0], dtype=torch.float64)
    with torch.no_grad():
        tol = 16 * EPS64 * float(x.abs().max()) / 0.01  # one division by σ_t ≥ σ_0.01 ≈ 0.01
        assert torch.allclose(net(x, t), -x / ou_sigma(t)[:, None], rtol=0, atol=tol)


@pytest.mark.parametrize("kwargs,match", [({"kind": "mlp"}, "network 'mlp'"), ({"ambient_dim": 9}, "multiple"),
                                          ({"hidden": 7}, "divisible")])
def test_network_spec_rejects_bad_values(kwargs: dict, match: str) -> None:
    base = {"kind": "latent", "ambient_dim": 8, "latent_dim": 2, "hidden": 8}
    with pytest.raises(ValueError, match=match):
        NetworkSpec(**(base | kwargs))


##################################################################################################
# training and sampling
##################################################################################################
@pytest.fixture
def one_thread():
    """Tiny networks are per-op-overhead bound: one thread is faster and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["latent", "ambient"])
def test_short_training_beats_the_untrained_network(kind: str, gen: torch.Generator, one_thread: None) -> None:
    mix = MixtureSpec(latent_dim=2, ambient_dim=8, seed=5).build()
    data = mix.sample(256, torch.Generator().manual_seed(6))
    spec = NetworkSpec(kind, 8, 2, hidden=16, depth=1)
    x, t = _eval_points(mix, gen, 1024)
    untrained = build_network(spec, seed=7).double()
    before = score_errors(untrained, mix, x, t)
    net = build_network(spec, seed=7).double()
    result = train_dsm(net, data, TrainConfig(steps=120, batch=128, lr=3e-3), torch.Generator().manual_seed(8))
    after = score_errors(net, mix, x, t)
    assert math.isfinite(result.final_loss) and result.steps == 120
    assert after.total < 0.7 * before.total, (before, after)
    if kind == "latent":
        assert subspace_error(net.projection, mix.basis) < subspace_error(untrained.projection, mix.basis)


def test_reverse_sde_with_the_exact_score_reaches_the_data(gen: torch.Generator) -> None:
    mix = MixtureSpec(latent_dim=2, ambient_dim=4, seed=9).build()
    data = mix.sample(400, gen)
    samples = reverse_sde(mix.score, 400, 4, gen, t_max=5.0, t_min=0.01, steps=100, dtype=torch.float64)
    noise = torch.randn(400, 4, generator=gen, dtype=torch.float64)
    ell = median_bandwidth(data)
    assert mmd2(samples, data, ell) < 0.2 * mmd2(noise, data, ell)
