"""Performer / FAVOR+: the random-feature estimator is unbiased with error ∝ 1/√M, and the
stabilised kernel computes exactly the attention its features define, even where naive exp fails."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.attention.peers import (
    NormaliserError, orthogonal_features, orthogonal_gaussian, performer_attention, positive_features,
)
from conftest import reference_attention
from test_peers_common import Z, assert_slope, mean_ci
from tolerances import assert_close, orthonormality_bound, unit_roundoff

F32_EPS = torch.finfo(torch.float32).eps


def _uniform(gen, *shape, bound=1.0):
    return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def _estimates(x, y, omegas):
    """φ(x)ᵀφ(y) for each Ω in ``omegas (S, M, d)``; x, y ``(1, d)`` → ``(S,)``."""
    return (positive_features(x, omegas) * positive_features(y, omegas)).sum(-1).squeeze(-1)


def test_orthogonal_blocks_reproducible_and_gaussian_lengths():
    omega = orthogonal_features(8, 20, seed=3)  # (20, 8): blocks of 8, 8, 4 rows
    assert omega.shape == (20, 8)
    for block in (omega[:8], omega[8:16], omega[16:]):
        gram = block @ block.T
        off = gram - torch.diag(torch.diagonal(gram))
        # Rows ℓᵢ·q̂ᵢ with q̂ from a Householder QR of an 8×8 matrix: |q̂ᵢᵀq̂ⱼ| ≤ orthonormality_bound(8, 8);
        # the signs are exact, the lengths' product rounds once (2u relative), and ℓᵢℓⱼ ≤ max ℓ² ≤ the
        # largest diagonal entry × (1 + that bound).
        ortho = orthonormality_bound(8, 8)
        allowed = (ortho + 2 * unit_roundoff()) * (1 + ortho) * float(gram.diagonal().max())
        assert_close(off, torch.zeros_like(off), atol=allowed, what="off-diagonal Gram")  # orthogonal rows
    assert torch.equal(omega, orthogonal_features(8, 20, seed=3))
    assert not torch.equal(omega, orthogonal_features(8, 20, seed=4))
    # Row lengths are χ_8: E‖ω‖² = 8 exactly; 2000 rows give SE √(2·8/2000) ≈ 0.09.
    sq = (orthogonal_features(8, 2000, seed=5) ** 2).sum(-1)
    assert torch.equal(orthogonal_gaussian(8, 20, torch.Generator().manual_seed(3)), omega)
    mean, se = mean_ci(sq)
    assert abs(mean - 8.0) <= Z * se


@pytest.mark.slow
@pytest.mark.parametrize("bound", [0.5, 1.0, 1.5])
def test_estimator_of_exp_kernel_is_unbiased(bound):
    gen = torch.Generator().manual_seed(11)
    d, scale = 8, 1 / math.sqrt(8)
    x = _uniform(gen, 1, d, bound=bound) * math.sqrt(scale)  # (1, d)
    y = _uniform(gen, 1, d, bound=bound) * math.sqrt(scale)  # (1, d)
    truth = math.exp(float(x @ y.T))
    omegas = orthogonal_gaussian(d, 128, gen, draws=(4000,))  # (4000, 128, d): independent draws
    est = _estimates(x, y, omegas)  # (4000,)
    mean, se = mean_ci(est)
    assert abs(mean - truth) <= Z * se, (mean, truth, se)
    assert Z * se < 0.1 * truth  # the interval is narrow enough to catch a 10 % bias


def test_estimator_error_shrinks_like_inverse_sqrt_features():
    # M multiple of d: the estimate is the mean of M/d i.i.d. block estimates, so its variance is
    # exactly Var_block/(M/d) and the RMS error has slope −1/2 in log M.
    gen = torch.Generator().manual_seed(12)
    d = 8
    x = _uniform(gen, 1, d) / d**0.25  # (1, d), scale 1/√d folded in
    y = _uniform(gen, 1, d) / d**0.25
    truth = math.exp(float(x @ y.T))
    counts = [8, 16, 32, 64, 128, 256]
    errors = []
    for count in counts:
        errors.append(_estimates(x, y, orthogonal_gaussian(d, count, gen, draws=(400,))) - truth)  # (400,)
    assert_slope(counts, errors, expected=-0.5)


def _feature_reference(q, k, v, scale, omega):
    """Float64 attention D⁻¹(φ(Q)φ(K)ᵀ)V with the same Ω, in log space (exact for any magnitude)."""
    x, y = q.double() * math.sqrt(scale), k.double() * math.sqrt(scale)
    lq = x @ omega.T - 0.5 * (x * x).sum(-1, keepdim=True)  # (n, M) log φ(x)·√M
    lk = y @ omega.T - 0.5 * (y * y).sum(-1, keepdim=True)  # (m, M)
    log_kernel = torch.logsumexp(lq[:, None, :] + lk[None, :, :], dim=-1)  # (n, m)
    return torch.softmax(log_kernel, dim=-1) @ v.double(), float(lq.abs().max() + lk.abs().max())


@pytest.mark.parametrize(
    "bound, dtype", [(1.0, torch.float64), (6.0, torch.float64), (10.0, torch.float32), (30.0, torch.float64)]
)
def test_kernel_equals_its_feature_attention_even_where_naive_exp_fails(bound, dtype):
    gen = torch.Generator().manual_seed(13)
    n, m, d, features = 40, 50, 8, 24
    q, k = _uniform(gen, n, d, bound=bound), _uniform(gen, m, d, bound=bound)
    v = _uniform(gen, m, 3)
    ref, arg_max = _feature_reference(q, k, v, 1.0, orthogonal_features(d, features, seed=0))
    out = performer_attention(q.to(dtype), k.to(dtype), v.to(dtype), scale=1.0, features=features, seed=0)
    eps = torch.finfo(dtype).eps
    # Each exp argument (a length-d dot product minus ‖x‖²/2, Ω rounded to dtype) errs by ≤ (d + 3)·eps·A
    # with A the largest |argument|; a feature-map inner product of positive terms adds M·eps, the
    # weighted mean over m keys m·eps, and a ratio of sums with relative error δ errs by ≤ 2δ·‖V‖_max.
    delta = (2 * (d + 3) * arg_max + features + m) * eps
    assert (out.double() - ref).abs().max() <= 2.2 * delta * v.abs().max()
    if dtype == torch.float32:
        # Adversarial for the naive form: exp(Ωx − ‖x‖²/2) underflows to 0 in float32.
        naive = positive_features(k.float(), orthogonal_features(d, features, seed=0).float())
        assert (naive.sum(-1) == 0).any()


def test_approaches_softmax_as_features_grow():
    gen = torch.Generator().manual_seed(14)
    q, k, v = _uniform(gen, 64, 8), _uniform(gen, 64, 8), _uniform(gen, 64, 4)
    ref = reference_attention(q, k, v, 1 / math.sqrt(8))
    rms = [
        torch.stack([(performer_attention(q, k, v, features=f, seed=s) - ref).pow(2).mean() for s in range(6)])
        .mean().sqrt()
        for f in (16, 1024)
    ]
    # 64× the features: the estimator's RMS error drops 8× to first order; demand at least 4×.
    assert rms[1] < rms[0] / 4


def test_seed_reproducible_and_underflow_raises():
    gen = torch.Generator().manual_seed(15)
    q, k, v = _uniform(gen, 10, 4), _uniform(gen, 12, 4), _uniform(gen, 12, 2)
    assert torch.equal(performer_attention(q, k, v, seed=5), performer_attention(q, k, v, seed=5))
    assert not torch.equal(performer_attention(q, k, v, seed=5), performer_attention(q, k, v, seed=6))
    # One key opposite the query: the query's features peak where min_l ω_l·x is reached, the key's
    # where max_l is; their product is exp(−1000·(max − min)) = 0 in float64 although the true
    # answer (one key) is v. The kernel must refuse, not return 0/0.
    q = torch.tensor([[-1000.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[1000.0, 0.0]], dtype=torch.float64)
    with pytest.raises(NormaliserError, match="normaliser"):
        performer_attention(q, k, torch.ones(1, 1, dtype=torch.float64), scale=1.0, features=4)
