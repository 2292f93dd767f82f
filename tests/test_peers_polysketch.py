"""PolySketch and its exact target: the degree-2 sketch is unbiased with error ∝ 1/√r, self-tensoring
gives non-negative degree-4 weights, the kernel computes exactly the attention its sketch defines,
and it converges to poly4_exact (itself checked against a float64 materialised reference)."""
from __future__ import annotations

import math

import pytest
import torch

from ditbench.attention import KERNELS
from ditbench.attention.peers import (
    NormaliserError, degree2_sketch, poly4_attention, polysketch_attention, self_tensor,
)
from ditbench.attention.peers import _common
from ditbench.attention.peers.polysketch import sketch_matrices
from test_peers_common import Z, assert_slope, mean_ci
from tolerances import assert_close, gamma, unit_roundoff, weighted_mean_bound

F32_EPS = torch.finfo(torch.float32).eps


def _unit(x):
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def _inputs(n, m, d=6, dv=3, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    q = torch.rand(n, d, generator=gen, dtype=torch.float64) * 2 - 1
    k = torch.rand(m, d, generator=gen, dtype=torch.float64) * 2 - 1
    v = torch.rand(m, dv, generator=gen, dtype=torch.float64) * 2 - 1
    return q.to(dtype), k.to(dtype), v.to(dtype)


def _pair(seed=0, d=8):
    """Unit x, y ``(1, d)`` with ⟨x, y⟩ ≈ 0.6 (a kernel value far from 0, so relative checks bite)."""
    gen = torch.Generator().manual_seed(seed)
    x = _unit(torch.randn(1, d, generator=gen, dtype=torch.float64))
    z = _unit(torch.randn(1, d, generator=gen, dtype=torch.float64))
    return x, _unit(0.6 * x + 0.8 * _unit(z - (z @ x.T) * x))


def _degree2_estimates(x, y, r, draws, gen):
    g1 = torch.randn(draws, x.shape[-1], r, generator=gen, dtype=torch.float64)  # (S, d, r)
    g2 = torch.randn(draws, x.shape[-1], r, generator=gen, dtype=torch.float64)
    return (degree2_sketch(x, g1, g2) * degree2_sketch(y, g1, g2)).sum(-1).squeeze(-1)  # (S,)


def test_degree2_sketch_is_unbiased_for_squared_inner_product():
    x, y = _pair()
    truth = float(x @ y.T) ** 2  # ≈ 0.36
    mean, se = mean_ci(_degree2_estimates(x, y, 16, 4000, torch.Generator().manual_seed(1)))
    assert abs(mean - truth) <= Z * se
    assert Z * se < 0.1 * truth  # narrow enough to catch a 10 % bias (e.g. a wrong 1/√r)


def test_degree2_sketch_error_shrinks_like_inverse_sqrt_r():
    # ⟨φ(x), φ(y)⟩ is the mean of r i.i.d. terms, so its variance is exactly σ²/r: slope −1/2.
    x, y = _pair()
    truth = float(x @ y.T) ** 2
    gen = torch.Generator().manual_seed(2)
    sizes = [4, 8, 16, 32, 64, 128]
    assert_slope(sizes, [_degree2_estimates(x, y, r, 400, gen) - truth for r in sizes], expected=-0.5)


def test_self_tensor_squares_the_inner_product_so_weights_are_non_negative():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(5, 7, generator=gen, dtype=torch.float64), torch.randn(9, 7, generator=gen, dtype=torch.float64)
    gram = self_tensor(a) @ self_tensor(b).T  # (5, 9)
    # Per entry, with S = |a|·|b|ᵀ: the feature dot Σ_{ij} a_i a_j b_i b_j has 49 terms of 3 rounded
    # products (γ_52·S²); squaring ⟨a, b⟩ (within γ_7·S) errs by ≤ (2γ_7 + γ_7² + u(1 + γ_7)²)·S².
    big_s = a.abs() @ b.abs().T  # (5, 9)
    g7 = gamma(7)
    tol = (gamma(49 + 3) + 2 * g7 + g7**2 + unit_roundoff() * (1 + g7) ** 2) * big_s**2
    assert_close(gram, (a @ b.T) ** 2, atol=tol, what="self-tensor gram")
    assert (gram >= 0).all()


def _poly4_tolerance(q, k, v, dtype=torch.float64) -> float:
    """Worst-case rounding of ⟨q̂, k̂⟩⁴-weighted means in ``dtype``: each unit row errs by γ_{d+2}
    relative per entry (d squares summed, a sqrt, a division), so s = ⟨q̂, k̂⟩ errs by
    δ ≤ γ_d + 2γ_{d+2} (Σ|q̂||k̂| ≤ 1); two squarings give |Δs⁴| ≤ (|s| + δ)⁴ − |s|⁴ + γ_2·(|s| + δ)⁴."""
    d = q.shape[-1]
    s = (_unit(q.double()) @ _unit(k.double()).T).abs()  # (n, m)
    delta = gamma(d, dtype) + 2 * gamma(d + 2, dtype)
    dw = (s + delta) ** 4 - s**4 + gamma(2, dtype) * (s + delta) ** 4
    return weighted_mean_bound(s**4, dw, v, dtype)


def _sketch_weights(q, k, g1, g2):
    return (degree2_sketch(_unit(q), g1, g2) @ degree2_sketch(_unit(k), g1, g2).T) ** 2  # (n, m) ≥ 0


def sketch_reference(q, k, v, g1, g2):
    """The attention the sketch G₁, G₂ defines, materialised in float64 ``(n, dv)``."""
    w = _sketch_weights(q.double(), k.double(), g1.double(), g2.double())  # (n, m)
    return (w @ v.double()) / w.sum(-1, keepdim=True)


def sketch_tolerance(q, k, v, g1, g2, dtype=torch.float64) -> torch.Tensor:
    """Per-element ``(n, dv)`` rounding bound of polysketch attention in ``dtype``, the kernel's
    linear form Φ(Q̂)·(Φ(K̂)ᵀ[V, 1]) or the materialised (φ(q̂)ᵀφ(k̂))²-weighted means alike.

    Magnitudes: φ(x) = (xG₁ ∘ xG₂)/√r errs by ≤ (2γ_d + 2γ_{d+2} + 2u)·(|x̂||G₁| ∘ |x̂||G₂|)/√r
    (two length-d dots of a unit row that itself errs by γ_{d+2}, a product, a division), so each
    of the r² features φᵢφⱼ, and each weight, errs by ≤ δ = 4·that relative to M_ij = (Σ_f |φ(q̂)|_f
    |φ(k̂)|_f)² in those magnitudes; the sums over r² features and m keys add γ_{r²+m+3}·M. With
    numerator and denominator off by a and b: |Δ(N/D)| ≤ (a + |N/D|·b)/(D − b) + u·|N/D|."""
    d, r, m = q.shape[-1], g1.shape[-1], k.shape[-2]
    q64, k64, v64 = q.double(), k.double(), v.double()
    g1a, g2a = g1.double().abs(), g2.double().abs()
    mag_q = (_unit(q64).abs() @ g1a) * (_unit(q64).abs() @ g2a) / math.sqrt(r)  # (n, r)
    mag_k = (_unit(k64).abs() @ g1a) * (_unit(k64).abs() @ g2a) / math.sqrt(r)  # (m, r)
    big_m = (mag_q @ mag_k.T) ** 2  # (n, m) ≥ every weight's magnitude
    u = unit_roundoff(dtype)
    rel = 4 * (2 * gamma(d, dtype) + 2 * gamma(d + 2, dtype) + 2 * u) + gamma(r * r + m + 3, dtype)
    w = _sketch_weights(q64, k64, g1.double(), g2.double())  # (n, m)
    den = w.sum(-1, keepdim=True)  # (n, 1)
    out = (w @ v64) / den  # (n, dv)
    a, b = rel * (big_m @ v64.abs()), rel * big_m.sum(-1, keepdim=True)  # (n, dv), (n, 1)
    if bool((b >= den).any()):
        raise ValueError("sketch_tolerance is vacuous: a row's weight errors reach its total weight")
    return (a + out.abs() * b) / (den - b) + u * out.abs()


def _poly4_reference(q, k, v):
    w = (_unit(q.double()) @ _unit(k.double()).T) ** 4  # (n, m)
    return (w @ v.double()) / w.sum(-1, keepdim=True)


@pytest.mark.parametrize("tile", [None, 64])  # default tiles, and tiny tiles to exercise streaming
def test_poly4_exact_matches_materialised_float64(tile, monkeypatch):
    if tile is not None:
        monkeypatch.setattr(_common, "TILE_ELEMENTS", tile)
    q, k, v = _inputs(70, 90)
    # Kernel and reference: the same non-negative weighted mean, each within its rounding bound.
    assert_close(poly4_attention(q, k, v), _poly4_reference(q, k, v), atol=2 * _poly4_tolerance(q, k, v))


def test_poly4_float32_within_rounding_and_scale_cancels():
    q, k, v = _inputs(80, 100)
    ref = _poly4_reference(q, k, v)
    qf, kf, vf = q.float(), k.float(), v.float()
    w32 = (_unit(qf) @ _unit(kf).T) ** 4  # naive materialised float32 baseline sets the tolerance
    base = max(float(((w32 @ vf) / w32.sum(-1, keepdim=True)).double().sub(ref).abs().max()), F32_EPS)
    out = poly4_attention(qf, kf, vf, scale=3.0)
    assert out.dtype == torch.float32 and float((out.double() - ref).abs().max()) <= 4 * base
    # Unit rows make the scale cancel: two evaluations, each within the rounding bound.
    assert_close(poly4_attention(q, k, v, scale=0.01), poly4_attention(q, k, v, scale=100.0),
                 atol=2 * _poly4_tolerance(q, k, v), what="scale 0.01 vs 100")


@pytest.mark.parametrize("tile", [None, 256])
def test_polysketch_equals_the_attention_its_sketch_defines(tile, monkeypatch):
    if tile is not None:
        monkeypatch.setattr(_common, "TILE_ELEMENTS", tile)
    q, k, v = _inputs(40, 50)
    g1, g2 = sketch_matrices(6, 8, seed=4, like=q)
    ref = sketch_reference(q, k, v, g1, g2)
    out = polysketch_attention(q, k, v, sketch_size=8, seed=4)
    # Both evaluations within sketch_tolerance of the exact sketch attention (r² = 64 features, m = 50).
    assert_close(out, ref, atol=2 * sketch_tolerance(q, k, v, g1, g2), what="polysketch vs its sketch")


def test_polysketch_converges_to_poly4_exact_as_r_grows():
    q, k, v = _inputs(48, 48)
    target = poly4_attention(q, k, v)
    rms = []
    for r in (4, 16, 64):
        errs = torch.stack([(polysketch_attention(q, k, v, sketch_size=r, seed=s) - target).pow(2).mean()
                            for s in range(12)])  # (12,) per-seed MSE
        rms.append(mean_ci(errs))
    for (hi, hi_se), (lo, lo_se) in zip(rms, rms[1:]):
        # 4× the sketch: MSE drops about 4× to first order; demand a drop beyond Z joint SEs.
        assert hi - lo > Z * (hi_se**2 + lo_se**2) ** 0.5


def test_refuses_degenerate_rows_and_labels_targets():
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[0.0, 1.0], [0.0, -2.0]], dtype=torch.float64)
    with pytest.raises(NormaliserError, match="poly4_exact"):
        poly4_attention(q, k, torch.ones(2, 1, dtype=torch.float64))  # q orthogonal to every key
    with pytest.raises(ValueError, match="all-zero row"):
        polysketch_attention(torch.zeros(1, 2, dtype=torch.float64), k, torch.ones(2, 1, dtype=torch.float64))
    assert "not softmax" in KERNELS["polysketch"].description and "poly4_exact" in KERNELS["polysketch"].description
    assert "not softmax" in KERNELS["poly4_exact"].description


def test_seed_reproducible():
    q, k, v = _inputs(20, 30)
    a = polysketch_attention(q, k, v, sketch_size=4, seed=1)
    assert torch.equal(a, polysketch_attention(q, k, v, sketch_size=4, seed=1))
    assert not torch.equal(a, polysketch_attention(q, k, v, sketch_size=4, seed=2))
