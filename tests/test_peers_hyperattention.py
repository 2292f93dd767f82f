"""HyperAttention: exact whenever its parts cover every key, exact fallback below min_seq_len, and a
residual whose error falls like √(1/s − 1/m) (uniform sampling without replacement)."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.attention import exact_attention
from ditbench.attention.peers import hyper_attention
from ditbench.attention.peers.hyperattention import gray_rank, lsh_buckets
from conftest import reference_attention
from test_peers_common import assert_slope
from tolerances import assert_close, gamma, softmax_attention_bound, unit_roundoff


def _inputs(n, m, d=8, dv=4, bound=2.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = (torch.rand(n, d, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    k = (torch.rand(m, d, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    v = torch.rand(m, dv, generator=gen, dtype=torch.float64) * 2 - 1
    return q, k, v


def test_gray_rank_orders_buckets_one_hyperplane_apart():
    rank = gray_rank(6)
    codes = torch.argsort(rank)  # code at each rank
    flips = codes[1:] ^ codes[:-1]
    assert sorted(rank.tolist()) == list(range(64))
    assert all(bin(int(f)).count("1") == 1 for f in flips)  # neighbours differ in exactly one bit


def test_lsh_is_angular():
    gen = torch.Generator().manual_seed(1)
    proj = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    x = torch.randn(30, 5, generator=gen, dtype=torch.float64)
    rank = gray_rank(7)
    # Scale-free: a power-of-two scale commutes with every rounding, so buckets are bit-equal.
    assert torch.equal(lsh_buckets(x, proj, rank), lsh_buckets(4.0 * x, proj, rank))
    # Any other scale rounds 3.5·x and the products: a sign can flip only where |x·p| is within the
    # two evaluations' rounding, 2(γ_d + u)·Σ|x||p|; every row clear of that keeps its bucket.
    margin = (x @ proj).abs() > 2 * (gamma(5) + unit_roundoff()) * (x.abs() @ proj.abs())  # (30, 7)
    clear = margin.all(-1)
    assert clear.sum() >= 25  # Gaussian margins: an exception, not the rule
    assert torch.equal(lsh_buckets(x, proj, rank)[clear], lsh_buckets(3.5 * x, proj, rank)[clear])
    # Opposite vectors sit on opposite sides of every hyperplane: complementary codes.
    inv = torch.argsort(rank)
    assert torch.equal(inv[lsh_buckets(x, proj, rank)] ^ inv[lsh_buckets(-x, proj, rank)], torch.full((30,), 127))


def _tol(q, k, v, scale) -> float:
    """Worst-case rounding of the kernel (two-pass softmax; the residual's m/samples weight is one
    more product, bounded as one rescaling) plus the float64 reference's."""
    return softmax_attention_bound(q, k, v, scale, rescales=1) + softmax_attention_bound(q, k, v, scale)


@pytest.mark.parametrize(
    "params",
    [
        {"min_seq_len": 4096},  # n below the fallback length: exact attention
        {"min_seq_len": 0, "block_size": 300},  # one block holds every key
        {"min_seq_len": 0, "block_size": 16, "samples": 250},  # every key sampled once, weight 1
        {"min_seq_len": 0, "block_size": 16, "samples": 10_000},  # more samples than keys: all keys
    ],
)
def test_exact_when_parts_cover_every_key(params):
    q, k, v = _inputs(200, 250)
    out = hyper_attention(q, k, v, scale=0.5, **params)
    assert_close(out, reference_attention(q, k, v, 0.5), atol=_tol(q, k, v, 0.5), what=str(params))


def test_fallback_is_the_exact_kernel_and_approximation_is_not():
    q, k, v = _inputs(64, 64)
    assert torch.equal(hyper_attention(q, k, v, min_seq_len=64), exact_attention(q, k, v))
    approx = hyper_attention(q, k, v, min_seq_len=63, block_size=8, samples=8)
    assert (approx - reference_attention(q, k, v, 1 / math.sqrt(8))).abs().max() > 1e-3


def test_block_part_alone_is_exact_softmax_over_each_block():
    # samples = 0: every query attends exactly the keys of its sorted block, nothing else.
    q, k, v = _inputs(96, 96, d=4)
    out = hyper_attention(q, k, v, scale=1.0, block_size=32, samples=0, min_seq_len=0, seed=3)
    proj = torch.randn(4, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rank = gray_rank(7)
    qo = torch.sort(lsh_buckets(q, proj, rank), stable=True).indices
    ko = torch.sort(lsh_buckets(k, proj, rank), stable=True).indices
    ref = torch.empty(96, 4, dtype=torch.float64)
    for b in range(3):
        rows, cols = qo[32 * b : 32 * (b + 1)], ko[32 * b : 32 * (b + 1)]
        ref[rows] = reference_attention(q[rows], k[cols], v[cols], 1.0)
    assert_close(out, ref, atol=_tol(q, k, v, 1.0))  # q, k's global magnitudes bound every block's


def test_error_falls_with_samples_like_finite_population_rate():
    # With s of m keys drawn without replacement, the residual sum's variance is ∝ (1/s − 1/m), so
    # to first order the output's RMS error has slope −1/2 against x = 1/(1/s − 1/m). s ≥ m/4 keeps
    # the ratio's higher-order terms negligible (measured: slope −0.49 ± 0.01 over 64 seeds).
    n = m = 256
    q, k, v = _inputs(n, m, bound=1.5)
    ref = reference_attention(q, k, v, 0.5)
    counts, xs, errors = [64, 128, 192, 240], [], []
    for s in counts:
        errs = [hyper_attention(q, k, v, scale=0.5, block_size=16, samples=s, min_seq_len=0, seed=seed) - ref
                for seed in range(16)]
        errors.append(torch.stack(errs).pow(2).mean(dim=(1, 2)).sqrt())  # (16,) per-seed RMS
        xs.append(1.0 / (1.0 / s - 1.0 / m))
    assert_slope(xs, errors, expected=-0.5)
    means = [float(e.mean()) for e in errors]
    assert all(a > b for a, b in zip(means, means[1:]))


def test_broadcast_batch_and_float32():
    gen = torch.Generator().manual_seed(4)
    q = torch.rand(2, 3, 100, 8, generator=gen) * 2 - 1
    k = torch.rand(3, 120, 8, generator=gen) * 2 - 1
    v = torch.rand(1, 1, 120, 2, generator=gen) * 2 - 1
    out = hyper_attention(q, k, v, block_size=120, min_seq_len=0)  # one block: exact
    ref = reference_attention(q, k, v, 1 / math.sqrt(8))
    naive = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), -1) @ v  # float32 baseline
    base = (naive.double() - ref).abs().max().item()
    assert out.shape == (2, 3, 100, 2) and out.dtype == torch.float32
    assert_close(out, ref, atol=4 * max(base, torch.finfo(torch.float32).eps), what="float32 vs 4× naive")


def test_seed_reproducible():
    q, k, v = _inputs(80, 80)
    a = hyper_attention(q, k, v, block_size=8, samples=8, min_seq_len=0, seed=1)
    assert torch.equal(a, hyper_attention(q, k, v, block_size=8, samples=8, min_seq_len=0, seed=1))
    assert not torch.equal(a, hyper_attention(q, k, v, block_size=8, samples=8, min_seq_len=0, seed=2))
