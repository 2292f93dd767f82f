"""Criteria numbers against an independent computation, the c-scaling law, the verdict rule, and the
generic SDPA checker on torch's own attention modules."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from ditbench import theory
from ditbench.dit import DiTConfig, VerdictRule, capture_sdpa, check_dit, check_module, per_layer
from ditbench.dit.criteria import HeadStats, criteria
from test_dit_workload import chain_length
from test_dit_reference import TINY, one_thread, reference_forward, tiny_inputs, tiny_model  # noqa: F401
from tolerances import LIBM_ULPS, assert_close, gamma, unit_roundoff

F64_EPS = torch.finfo(torch.float64).eps
# Maxima of the same float64 quantities (q, k, V·W_O, logits) computed in two op orders: each side
# within γ of the whole forward chain's inner-product length (test_dit_workload.chain_length, which
# contains the chain to every q, k, v; Higham Lemma 3.3), scaled by the quantity's magnitude as in
# test_dit_reference.forward_tolerance; the logits' own length-d product is part of that chain.
REL = 2 * gamma(chain_length(TINY, (8 // TINY.patch_size) ** 2, TINY.depth, "forward"))


def independent_criteria(model, x, t, y):
    """Per (layer, head): (q_bound, k_bound, ov_bound, radius) from the reference forward's q, k, v."""
    _, qkv = reference_forward(model.state_dict(), TINY, x, t, y)
    out = {}
    d = TINY.head_dim
    s = 1 / math.sqrt(d)
    for layer, (q, k, v) in enumerate(qkv):
        w_o = model.state_dict()[f"blocks.{layer}.attn.proj.weight"].double()  # (D, D)
        for h in range(TINY.num_heads):
            qh, kh, vh = q[:, h], k[:, h], v[:, h]  # (N, T, d)
            ov = vh @ w_o[:, h * d : (h + 1) * d].T  # (N, T, D): the head's share of proj
            radius = (s * qh @ kh.transpose(-1, -2)).abs().max()
            factor = math.sqrt(s * d)  # paper convention ⟨q',k'⟩/d with q' = √(s·d)·q
            out[(f"blocks.{layer}.attn", h)] = (factor * float(qh.abs().max()), factor * float(kh.abs().max()),
                                                float(ov.abs().max()), float(radius))
    return out


def test_numbers_match_independent_computation(gen):
    model = tiny_model().double()
    x, t, y = tiny_inputs(gen)
    rows = check_dit(model, x.double(), t, y, eps=1e-3)
    expected = independent_criteria(model, x, t, y)
    assert len(rows) == TINY.depth * TINY.num_heads
    L = (8 // TINY.patch_size) ** 2
    for r in rows:
        qb, kb, ovb, radius = expected[(r.layer, r.head)]
        assert (r.L, r.d) == (L, TINY.head_dim)
        assert r.q_bound == pytest.approx(qb, rel=REL) and r.k_bound == pytest.approx(kb, rel=REL)
        assert r.ov_bound == pytest.approx(ovb, rel=REL) and r.radius == pytest.approx(radius, rel=REL)
        assert r.bound == max(r.q_bound, r.k_bound) and r.gamma == max(r.bound, r.ov_bound)
        # √(ln L) two ways: log within LIBM_ULPS ulp (half of it survives the sqrt), the sqrt u.
        assert r.threshold == pytest.approx(math.sqrt(math.log(L)), rel=(LIBM_ULPS + 1) * F64_EPS, abs=0)
        assert r.ratio == pytest.approx(r.bound / r.threshold, rel=F64_EPS, abs=0)  # one division each side
        # The measured radius never exceeds the Cauchy–Schwarz bound, nor the entry bound B²
        # (|⟨q',k'⟩/d| ≤ d·B²/d).
        assert r.radius <= r.radius_cs * (1 + REL) and r.radius <= r.bound**2 * (1 + REL)


def test_cost_columns_follow_theory_cost_model(gen):
    model = tiny_model()
    rows = check_dit(model, *tiny_inputs(gen), eps=1e-2)
    r = rows[0]
    assert r.exact_flops == 2.0 * r.L * r.L * (2 * r.d) + r.L * r.L
    assert r.degree == theory.degree_for(r.radius, 1e-2)
    assert r.rank == theory.feature_rank(r.d, r.degree)
    assert r.cost_ratio == pytest.approx(theory.polynomial_forward_cost(r.L, r.L, r.d, r.d, r.degree).flops
                                         / r.exact_flops)


ONE_BLOCK = DiTConfig(name="one", hidden_size=32, depth=1, num_heads=4, patch_size=2, num_classes=10)


def test_scaling_qkv_by_c_scales_bound_by_c_and_flips_verdict(gen):
    # L = 64 tokens (latent 16, patch 2): ln L = 4.16 ≥ d/2 = 4, so only the bound decides.
    model = tiny_model(cfg=ONE_BLOCK, latent=16).double()
    x, t, y = (a.double() if a.is_floating_point() else a for a in tiny_inputs(gen, latent=16, cfg=ONE_BLOCK))
    base = check_dit(model, x, t, y)
    worst = max(r.ratio for r in base)
    qkv = model.blocks[0].attn.qkv
    w0, b0 = qkv.weight.detach().clone(), qkv.bias.detach().clone()
    for target, verdict in ((0.4, "inside"), (0.75, "near"), (1.5, "outside")):
        c = target / worst
        with torch.no_grad():
            qkv.weight.copy_(c * w0)
            qkv.bias.copy_(c * b0)
        scaled = check_dit(model, x, t, y)
        for r0, r in zip(base, scaled):
            assert r.bound == pytest.approx(c * r0.bound, rel=REL)
            assert r.ov_bound == pytest.approx(c * r0.ov_bound, rel=REL)
            assert r.radius == pytest.approx(c * c * r0.radius, rel=REL)
        assert max(r.ratio for r in scaled) == pytest.approx(target, rel=REL)
        assert per_layer(scaled)[0].verdict == verdict


@pytest.mark.parametrize("ratio, d, ln_l, verdict", [
    (0.3, 4, 5.0, "inside"), (0.5, 10, 5.0, "inside"),  # boundaries are inclusive on the inside
    (0.7, 4, 5.0, "near"),
    (1.0, 4, 5.0, "outside"), (0.1, 11, 5.0, "outside"),  # too large a bound, or d > 2·ln L
    (0.1, 72, math.log(256), "outside"),  # DiT-XL/2 at 256 px, whatever its entries
])
def test_verdict_rule_known_answers(ratio, d, ln_l, verdict):
    assert VerdictRule().verdict(ratio, d, ln_l)[0] == verdict


def test_verdict_rule_validates_and_criteria_rejects_bad_eps():
    with pytest.raises(ValueError, match="inside_ratio"):
        VerdictRule(inside_ratio=1.0, outside_ratio=0.5)
    stats = HeadStats("l", 0, 16, 4, 0.5, 1.0, 1.0, 1.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="eps"):
        criteria(stats, eps=1.5)
    with pytest.raises(ValueError, match="n=1"):
        criteria(HeadStats("l", 0, 1, 4, 0.5, 1.0, 1.0, 1.0, 1.0, 2.0))


def test_convention_mapping_on_synthetic_stats():
    # s = 1 with d = 4: q' = (s·d)^½·q = 2·q. Threshold √ln 256 = 2.35; d = 4 ≤ 2·ln 256.
    r = criteria(HeadStats("l", 0, 256, 4, 1.0, q_max=0.75, k_max=0.25, ov_max=3.0, radius=0.1, radius_cs=0.2))
    assert r.q_bound == 1.5 and r.k_bound == 0.5 and r.bound == 1.5 and r.gamma == 3.0
    assert r.ratio == pytest.approx(1.5 / math.sqrt(math.log(256)))  # 0.64: between 0.5 and 1
    assert r.verdict == "near" and r.verdict_train == "outside"  # Γ includes the value path


def _encoder_layer_reference(layer: nn.TransformerEncoderLayer, x: torch.Tensor):
    """q, k, v of a post-norm encoder layer's self-attention, from its weights (batch_first)."""
    attn = layer.self_attn
    e, h = attn.embed_dim, attn.num_heads
    qkv = x @ attn.in_proj_weight.T + attn.in_proj_bias  # (N, T, 3E)
    q, k, v = (qkv[..., i * e : (i + 1) * e].reshape(x.shape[0], x.shape[1], h, e // h).transpose(1, 2)
               for i in range(3))
    return q, k, v  # (N, H, T, d)


@pytest.mark.slow
def test_generic_checker_on_transformer_encoder_layer(gen):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, dropout=0.0).double().eval()
    x = torch.randn(2, 12, 16, generator=gen, dtype=torch.float64)
    calls = []
    with torch.no_grad():
        plain = layer(x)  # inference fast path (fused native kernel)
        with capture_sdpa(layer, calls.append):
            captured = layer(x)  # the SDPA route the capture forces
        rows = check_module(layer, x)
    assert torch.backends.mha.get_fastpath_enabled()  # restored afterwards
    assert len(calls) == 1
    # Two float64 implementations of one post-norm layer: the chain in_proj (16), QKᵀ (4), softmax sum
    # and PV (12 each), out_proj (16), LayerNorm (2·16), linear1 (16), linear2 (32), LayerNorm (2·16):
    # each side within γ of that total length (Higham Lemma 3.3), scaled by the LayerNorm'd output.
    chain = 16 + 4 + 2 * 12 + 16 + 2 * 16 + 16 + 32 + 2 * 16
    assert_close(captured, plain, atol=2 * gamma(chain) * float(plain.abs().max()), what="captured vs fast path")
    with torch.no_grad():
        q, k, v = _encoder_layer_reference(layer, x)
    s, d = 0.5, 4  # 1/√d
    # Products of length ≤ 16 here, shorter than the length-128 chains REL is derived for.
    assert len(rows) == 4 and {r.d for r in rows} == {4} and {r.L for r in rows} == {12}
    for r in rows:
        assert r.layer == "self_attn#0"
        assert r.q_bound == pytest.approx(math.sqrt(s * d) * float(q[:, r.head].abs().max()), rel=REL)
        radius = float((s * q[:, r.head] @ k[:, r.head].transpose(-1, -2)).abs().max())
        assert r.radius == pytest.approx(radius, rel=REL)
        assert r.ov_bound == pytest.approx(float(v[:, r.head].abs().max()), rel=REL)  # W_O unknown: ‖V‖


def test_generic_checker_on_multihead_attention_default_need_weights(gen):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(3, 5, 8, generator=gen)
    with torch.no_grad():
        out, weights = mha(x, x, x)  # need_weights=True: torch's explicit-softmax path
        rows = check_module(mha, x, x, x)
        again, _ = mha(x, x, x)
    assert weights is not None and torch.allclose(again, out)
    assert len(rows) == 2 and rows[0].layer == "MultiheadAttention#0"


def test_generic_checker_counts_layers_of_a_stack(gen):
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 3,
                                enable_nested_tensor=False).eval()
    rows = check_module(enc, torch.randn(2, 6, 16, generator=gen))
    assert sorted({r.layer for r in rows}) == [f"layers.{i}.self_attn#{i}" for i in range(3)]


class _HandWrittenAttention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x @ x.transpose(-1, -2), -1) @ x


def test_generic_checker_refuses_when_nothing_is_captured():
    with pytest.raises(ValueError, match="no scaled-dot-product attention call"):
        check_module(_HandWrittenAttention(), torch.randn(2, 5, 4))


def test_direct_sdpa_calls_are_captured_once_with_their_scale(gen):
    class Direct(nn.Module):
        def forward(self, q, k, v):
            return nn.functional.scaled_dot_product_attention(q, k, v, scale=0.25)

    q, k, v = (torch.randn(1, 2, 9, 4, generator=gen) for _ in range(3))
    rows = check_module(Direct(), q, k, v)
    assert len(rows) == 2 and {r.scale for r in rows} == {0.25}  # once, not again at the aten level
    # The checker upcasts the captured float32 q, k and forms the logits in float64, as here, but it
    # applies the scale to q first: two float64 length-4 dot products, each within (γ_4 + u)·s·Σ|q||k|.
    q64, k64 = q[0, 0].double(), k[0, 0].double()
    expected = float((0.25 * q64 @ k64.T).abs().max())
    reach = 0.25 * float((q64.abs() @ k64.abs().T).max())
    assert_close(rows[0].radius, expected, atol=2 * (gamma(4) + unit_roundoff()) * reach, what="radius")


def test_degree_rank_and_cost_use_theory_degree_for(gen, monkeypatch):
    # Exercises the wiring with a stand-in degree_for (the real one is merged separately).
    seen = []

    def fake_degree_for(radius: float, eps: float) -> int:
        seen.append((radius, eps))
        return 3

    monkeypatch.setattr(theory, "degree_for", fake_degree_for, raising=False)
    rows = check_dit(tiny_model(), *tiny_inputs(gen), eps=0.05)
    r = rows[0]
    assert (r.radius, 0.05) in seen
    assert r.degree == 3 and r.rank == math.comb(3 + r.d, r.d)
    poly = 2.0 * (2 * r.L) * r.rank * (r.d + 1) + (2 * r.L) * r.rank  # DESIGN §2 FLOP model
    assert r.poly_flops == poly and r.cost_ratio == poly / r.exact_flops


def test_no_qualifying_degree_is_reported_not_raised(gen, monkeypatch):
    def no_degree(radius: float, eps: float) -> int:
        raise ValueError(f"no degree ≤ 30 reaches eps={eps} at radius={radius}")

    monkeypatch.setattr(theory, "degree_for", no_degree, raising=False)
    r = check_dit(tiny_model(), *tiny_inputs(gen))[0]
    assert r.degree is None and r.rank is None and r.cost_ratio is None
    assert "polynomial: no degree ≤ 30" in r.reason


def test_per_layer_summary_takes_maxima_over_heads(gen):
    rows = check_dit(tiny_model(), *tiny_inputs(gen))
    summary = per_layer(rows)
    assert [s.layer for s in summary] == ["blocks.0.attn", "blocks.1.attn"]
    for s in summary:
        heads = [r for r in rows if r.layer == s.layer]
        assert s.head == "max"
        assert s.ratio == max(r.ratio for r in heads) and s.radius == max(r.radius for r in heads)
        assert s.gamma == max(r.gamma for r in heads) and s.ov_bound == max(r.ov_bound for r in heads)
