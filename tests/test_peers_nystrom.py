"""Nyströmformer: segment-mean landmarks, the Razavi pseudo-inverse iteration (converges to
torch.linalg.pinv at its proven rate), and exactness when every token is its own landmark."""
from __future__ import annotations

import pytest
import torch

from ditbench.attention.peers import iterative_pinv, nystrom_attention
from ditbench.attention.peers.nystrom import segment_means
from conftest import reference_attention
from test_peers_common import own_rounding
from tolerances import assert_close, gamma, max_abs, softmax_attention_bound, unit_roundoff

F64_EPS = torch.finfo(torch.float64).eps


def _residual_after(rho: float, iterations: int) -> float:
    """Worst eigenvalue of I − aZ_k: the iteration maps each eigenvalue x of aZ (all in (0, 1], since
    aZ₀ = aaᵀ/(‖a‖₁‖a‖_∞)) by x ↦ ¼(13x − 15x² + 7x³ − x⁴); e = 1 − x starts at most at ρ and
    the map is monotone in e on [0, 1), so iterating the scalar bounds every eigenvalue."""
    e = rho
    for _ in range(iterations):
        x = 1.0 - e
        e = 1.0 - 0.25 * (13 * x - 15 * x**2 + 7 * x**3 - x**4)
    return e


def _rho(a: torch.Tensor) -> float:
    """‖I − aZ₀‖₂ restricted to the range of a: 1 − σ_min⁺²/(‖a‖₁‖a‖_∞)."""
    sv = torch.linalg.svdvals(a)
    smallest = sv[sv > sv[0] * a.shape[-1] * F64_EPS].min()
    c = a.abs().sum(-2).max() * a.abs().sum(-1).max()
    return float(1 - smallest**2 / c)


def _iterations_for(a: torch.Tensor) -> int:
    k = 0
    while _residual_after(_rho(a), k) > F64_EPS:
        k += 1
    return k


def test_residual_map_is_third_order():
    # e' = ¾e³ + O(e⁴): the iteration's third-order convergence.
    assert _residual_after(1e-3, 1) == pytest.approx(0.75e-9, rel=1e-2)


@pytest.mark.parametrize("rank", [16, 10])  # full rank, and rank-deficient (pinv ≠ inverse)
def test_iterative_pinv_converges_to_torch_pinv(rank):
    gen = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(16, 16, generator=gen, dtype=torch.float64))
    w, _ = torch.linalg.qr(torch.randn(16, 16, generator=gen, dtype=torch.float64))
    sv = torch.linspace(1.0, 0.5, rank, dtype=torch.float64)  # condition number 2 on the range
    a = (u[:, :rank] * sv) @ w[:, :rank].T  # (16, 16)
    needed = _iterations_for(a)
    assert needed <= 12  # well conditioned: a handful of third-order steps
    z = iterative_pinv(a, needed)
    exact = torch.linalg.pinv(a)
    # Both z and torch's SVD pinv carry first-order rounding errors (linear in u, amplified by κ);
    # the tolerance is a naive same-precision baseline (STYLE 7): each computation's own error,
    # measured in float32 on ``a`` rounded to float32 against the same computation in float64 and
    # rescaled by u64/u32, and each allowed twice its own. The baselines' pinv cuts at rtol 1/4: the
    # range's singular values are ≥ 0.5, the rounded rank-deficient a's others ~u32 (default cut-offs
    # differ between the dtypes and would invert those).
    a32 = a.float()
    per_u = unit_roundoff(torch.float64) / unit_roundoff(torch.float32)
    own_iteration = max_abs(iterative_pinv(a32, needed).double() - iterative_pinv(a32.double(), needed)) * per_u
    own_svd = max_abs(torch.linalg.pinv(a32, rtol=0.25).double() - torch.linalg.pinv(a32.double(), rtol=0.25)) * per_u
    assert_close(z, exact, atol=2 * (own_iteration + own_svd), what=f"rank {rank}, {needed} iterations")
    if rank == 16:
        assert (iterative_pinv(a, 1) - exact).abs().max() > 1e-3  # one step is not enough: test can fail


def test_segment_means_cover_every_token():
    x = torch.arange(10, dtype=torch.float64)[:, None] * torch.tensor([[1.0, -2.0]], dtype=torch.float64)  # (10, 2)
    torch.testing.assert_close(segment_means(x, 5), x.view(5, 2, 2).mean(1), rtol=0, atol=0)
    # 10 tokens into 4 segments: token i → ⌊4i/10⌋, sizes 3, 2, 3, 2.
    expected = torch.stack([x[0:3].mean(0), x[3:5].mean(0), x[5:8].mean(0), x[8:10].mean(0)])
    # Two evaluations of a mean of ≤ 10 values (a sum in any order, a division): each within
    # γ_{s+1}·max|x| for a segment of s tokens.
    assert_close(segment_means(x, 4), expected, atol=2 * gamma(3 + 1) * max_abs(x), what="4 segments")
    assert_close(segment_means(x, 1), x.mean(0, keepdim=True), atol=2 * gamma(10 + 1) * max_abs(x), what="1 segment")


def test_exact_when_every_token_is_a_landmark():
    gen = torch.Generator().manual_seed(1)
    n, d = 48, 8
    q = (torch.rand(2, n, d, generator=gen, dtype=torch.float64) * 2 - 1) * 2
    k = q.flip(0) + 0.1 * torch.randn(2, n, d, generator=gen, dtype=torch.float64)
    v = torch.rand(2, n, 3, generator=gen, dtype=torch.float64) * 2 - 1
    a = torch.softmax(q @ k.transpose(-1, -2), dim=-1)  # (2, n, n): F = A = B when l = n = m
    kappa = float(torch.linalg.cond(a).max())
    iterations = max(_iterations_for(a[0]), _iterations_for(a[1]))
    out = nystrom_attention(q, k, v, scale=1.0, landmarks=n, pinv_iterations=iterations)
    ref = reference_attention(q, k, v, 1.0)
    # F·A⁺·(A·V) = A·V in exact arithmetic: what is left is rounding, the kernel's within 2× its own
    # (measured float32 → float64 baseline, κ(A) included), the float64 reference's within its bound.
    own = own_rounding("nystrom", q, k, v, torch.float64, scale=1.0, landmarks=n, pinv_iterations=iterations)
    assert_close(out, ref, atol=2 * own + softmax_attention_bound(q, k, v, 1.0),
                 what=f"landmarks = n (κ = {kappa:.3g})")


def test_divergent_pinv_is_refused_not_returned():
    # Finite inputs whose logits overflow to inf: the softmaxes give NaN; the kernel must raise.
    q = torch.ones(4, 2, dtype=torch.float64) * 1e308
    with pytest.raises((FloatingPointError, ValueError)):
        nystrom_attention(q, q, torch.ones(4, 1, dtype=torch.float64), scale=1.0, landmarks=2)
