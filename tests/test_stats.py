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

from tolerances import LIBM_ULPS, assert_close, gamma, max_abs, orthonormality_bound, qr_factor_defect, unit_roundoff

EPS64 = torch.finfo(torch.float64).eps
U64 = unit_roundoff(torch.float64)
PER_EXP = LIBM_ULPS * EPS64  # relative error of one exp/expm1 evaluation (LIBM_ULPS ulp of a value < 1)



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
    assert_close(got, ref, atol=bound * scale, what=f"score at t={t}, ξ={off_noise}")
    logp = mix.log_density(xd, tt)
    ref_logp = dist.log_prob(xd)
    assert_close(logp, ref_logp, atol=bound * (ref_logp.abs() + scale.squeeze(-1) * xd.norm(dim=-1)),
                 what="log density")


def test_latent_part_of_data_follows_the_mixture(gen: torch.Generator) -> None:
    """Bᵀx0 recovers h0 exactly and the complement is ξ-sized: the data lie on (near) the subspace."""
    mix = MixtureSpec(latent_dim=2, ambient_dim=9, off_noise=0.0, seed=3).build()
    x = mix.sample(500, gen)
    resid = x - (x @ mix.basis) @ mix.basis.T
    # B̂ is a computed QR factor, orthonormal to E = B̂ᵀB̂ − I (orthonormality_bound), entries ≤ 1.
    # x = H·B̂ᵀ rounded (δx ≤ γ_d0·d0·max|H| per entry, max|H| ≤ √D·‖x‖_max); in exact arithmetic
    # the residual of x̂ is δx(I − B̂B̂ᵀ) − H·E·B̂ᵀ (rows of |I − B̂B̂ᵀ| sum to ≤ 1 + D), and computing
    # it adds γ_D·D·‖x‖ (x̂B̂, carried through d0 entries of B̂ᵀ), γ_d0·d0·max|H| and the subtraction.
    big_d, d0, x_max = 9, 2, max_abs(x)
    h_max = math.sqrt(big_d) * x_max
    bound = ((1 + big_d) * gamma(d0) * d0 * h_max + d0 * d0 * h_max * orthonormality_bound(big_d, d0)
             + d0 * gamma(big_d) * big_d * x_max + gamma(d0) * d0 * h_max + 2 * U64 * (x_max + d0 * h_max))
    assert_close(resid, torch.zeros_like(resid), atol=bound, what="residual off the subspace")
    assert_close(mix.basis.T @ mix.basis, torch.eye(2, dtype=torch.float64), atol=orthonormality_bound(big_d, d0),
                 what="BᵀB")


def test_schedule_small_t_is_exact() -> None:
    t = torch.tensor([1e-12, 1.0], dtype=torch.float64)
    # σ_t = 1 − e^{−t} = t(1 − t/2 + …): within t/2 relative of t, plus one expm1's rounding.
    assert float(ou_sigma(t)[0]) == pytest.approx(1e-12, rel=1e-12 / 2 + PER_EXP)
    # α² + σ = e^{−1}(1 + δ₁)²(1 + δ₂) + (1 − e^{−1})(1 + δ₃), rounded once more: |δ₁|, |δ₃| ≤ PER_EXP.
    e1 = math.exp(-1.0)
    tol = e1 * (2 * PER_EXP + U64) + (1 - e1) * PER_EXP + U64 * (1 + e1)
    assert float(ou_alpha(t)[1] ** 2 + ou_sigma(t)[1]) == pytest.approx(1.0, abs=tol)


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
    raw = torch.randn(6, generator=gen, dtype=torch.float64)
    u = raw - mix.basis @ (mix.basis.T @ raw)
    shrink = float(raw.norm() / u.norm())  # how much the projection's rounding is magnified below
    u = u / u.norm()
    c, e = 0.7, -0.2
    err = score_errors(lambda xx, tt: mix.score(xx, tt) + c * b + e * u, mix, x, t)
    root = math.sqrt(float(ou_sigma(t).mean()))
    # Derived bound. The offset is recovered from a difference of O(‖score‖) numbers: each entry
    # of diff = ((s + c·b) + e·u) − s is off by ≤ u(2S + 7) (S = max|s|; two sums, two products, the
    # difference), ≤ √D·that per point. B̂ is orthonormal to E = orthonormality_bound: b's length and
    # the projection of diff move by ≤ d0·E; u leaks into the subspace by ≤ (d0·E + 2γ_D + 2γ_d0)·shrink;
    # the d0- and D-long sums of squares add γ. A point's norms are then within δ of |c|, |e|, hypot;
    # the σ-weighted means over N points add γ_N (and σ's own exp), the square roots divide by the value.
    big_d, d0, n = 6, 2, x.shape[0]
    orth = orthonormality_bound(big_d, d0)
    leak = abs(e) * (d0 * orth + 2 * gamma(big_d) + 2 * gamma(d0)) * shrink
    per_point = (math.sqrt(big_d) * U64 * (2 * max_abs(mix.score(x, t)) + 7) * (1 + d0 * orth)
                 + gamma(big_d) * math.sqrt(big_d * d0) + leak + abs(c) * d0 * orth)
    mean_rounding = gamma(n) + PER_EXP + 2 * U64  # the weighted mean over N points, σ's exp, the division

    def mean_square_error(value: float) -> float:
        """|mean σ·‖·‖² − root²·value²| when each point's norm is within δ of ``value``."""
        per = 2 * value * per_point + per_point**2 + gamma(big_d) * (value + per_point) ** 2
        return root**2 * (per + mean_rounding * (value + per_point) ** 2)

    def tol(value: float, mse: float) -> float:
        """|√A − value·root| ≤ |A − A₀|/(value·root), and the reference root's own rounding."""
        return mse / (value * root) + value * root * mean_rounding

    on_mse, total_mse = mean_square_error(abs(c)), mean_square_error(math.hypot(c, e))
    assert err.on == pytest.approx(abs(c) * root, abs=tol(abs(c), on_mse))
    assert err.off == pytest.approx(abs(e) * root, abs=tol(abs(e), on_mse + total_mse))  # off² = total² − on²
    assert err.total == pytest.approx(math.hypot(c, e) * root, abs=tol(math.hypot(c, e), total_mse))


def test_score_errors_refuse_non_finite_output(gen: torch.Generator) -> None:
    mix = MixtureSpec(latent_dim=2, ambient_dim=4).build()
    x, t = _eval_points(mix, gen, 8)
    with pytest.raises(FloatingPointError, match="non-finite"):
        score_errors(lambda xx, tt: xx * math.nan, mix, x, t)


def _orthonormal(dim: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return q


def _subspace_error_bound(dim: int, d0: int, expected: float, extra: float = 0.0) -> float:
    """|subspace_error(W, B) − expected| for W, B (dim, d0) taken from computed dim×dim QR factors,
    one column of W rotated (cos·q + sin·q', rounded: ≤ 2u per entry, so Gram entries move ≤ 4u).
    sq = ‖WᵀW‖² + ‖BᵀB‖² − 2‖WᵀB‖² sums 4·d0² squares of Gram entries |g| ≤ 1 + δ that are off by
    δ ≤ orthonormality_bound(dim, dim) + 4u + ``extra`` (the Gram's own rounding included): each square by
    2δ + δ² + u, each of the three sums by γ_{d0²}·d0(1 + δ)², the two additions by 2u·4d0.
    Then |√sq − e| ≤ Δ/e for e > 0, and ≤ √Δ for e = 0 (√ is not Lipschitz at 0)."""
    delta = orthonormality_bound(dim, dim) + 4 * U64 + extra
    sq_err = (4 * d0 * d0 * (2 * delta + delta**2 + U64) + 3 * gamma(d0 * d0) * d0 * (1 + delta) ** 2
              + 2 * U64 * 4 * d0)
    return sq_err / expected if expected > 0 else math.sqrt(sq_err)


def _projector_distance_bound(dim: int, d0: int) -> float:
    """|‖WWᵀ − BBᵀ‖_F − e| for the same W, B, computed directly: W, B differ from exactly orthonormal
    W₀, B₀ by ‖ΔW‖_F ≤ ε_Q + 2u, ‖ΔB‖_F ≤ ε_Q (ε_Q = qr_factor_defect), moving WWᵀ by ≤ 2‖ΔW‖ + ‖ΔW‖²;
    each of the dim² entries of WWᵀ − BBᵀ rounds by ≤ 2γ_d0·d0 + u·2 (entries ≤ 1), and the norm of
    a value ≤ √(2·d0) adds γ_{dim²} relative."""
    dw, db = qr_factor_defect(dim, dim) + 2 * U64, qr_factor_defect(dim, dim)
    entries = dim * (2 * gamma(d0) * d0 + 2 * U64)  # Frobenius norm of the per-entry rounding
    return 2 * dw + dw**2 + 2 * db + db**2 + entries + gamma(dim * dim) * (math.sqrt(2 * d0) + entries)


@pytest.mark.parametrize("theta", [0.0, 0.3, math.pi / 4, math.pi / 2])
def test_subspace_error_of_a_rotated_subspace(theta: float, gen: torch.Generator) -> None:
    """Rotating one basis vector by θ out of the subspace gives ‖WWᵀ − BBᵀ‖_F = √2·sin θ."""
    q = _orthonormal(10, gen)
    b = q[:, :3]
    w = b.clone()
    w[:, 0] = math.cos(theta) * q[:, 0] + math.sin(theta) * q[:, 3]
    expected = math.sqrt(2) * math.sin(theta)
    assert subspace_error(w, b) == pytest.approx(expected, abs=_subspace_error_bound(10, 3, expected))
    direct = float(torch.linalg.matrix_norm(w @ w.T - b @ b.T))
    assert direct == pytest.approx(expected, abs=_projector_distance_bound(10, 3))


def test_subspace_error_ignores_rotation_within_and_maxes_when_orthogonal(gen: torch.Generator) -> None:
    q = _orthonormal(8, gen)
    b = q[:, :3]
    inner = _orthonormal(3, gen)
    # W = b @ inner also carries the 3×3 factor's defect ε₃ and the product's rounding (≤ 3γ₃ per entry,
    # ≤ √8·3γ₃ per column): a column off by c moves a Gram entry by ≤ 2c + c².
    c = qr_factor_defect(3, 3) + math.sqrt(8) * 3 * gamma(3)
    within = _subspace_error_bound(8, 3, 0.0, extra=2 * c + c * c)
    assert subspace_error(b @ inner, b) == pytest.approx(0.0, abs=within)
    assert subspace_error(q[:, 3:6], b) == pytest.approx(math.sqrt(6), abs=_subspace_error_bound(8, 3, math.sqrt(6)))
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
    # One sample against itself: the three Gram means are one computation, so a + a − 2a = 0 up to
    # the two roundings of values ≤ 2 (the kernel is ≤ 1).
    assert mmd2(x, x, ell) == pytest.approx(0.0, abs=2 * U64 * 2)
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
    w = net.projection.detach()  # a float32 product of Householder reflections (torch's orthogonal map)
    assert_close(w.T @ w, torch.eye(3), atol=orthonormality_bound(12, 3, torch.float32), what="W_Bᵀ W_B")
    net = net.double()
    x = torch.randn(5, 12, generator=gen, dtype=torch.float64)
    t = torch.tensor([0.01, 0.1, 1.0, 2.0, 5.0], dtype=torch.float64)
    with torch.no_grad():
        # f = 0 exactly (zero-initialised output layer), so both sides divide −x by the same σ̂_t:
        # one rounding of a quotient ≤ max|x|/σ_0.01 on each side.
        tol = 2 * U64 * max_abs(x) / float(ou_sigma(t).min())
        assert_close(net(x, t), -x / ou_sigma(t)[:, None], atol=tol, what="untrained latent network")


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
