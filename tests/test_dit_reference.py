"""The DiT model against an independent, straightforward float64 re-implementation of the published
forward (facebookresearch/DiT models.py + timm layers), written here from the state dict alone."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tolerances import LIBM_ULPS, assert_close

from ditbench.dit import DIT_CONFIGS, DiTConfig, build_dit, perturb_zero_init
from ditbench.dit.model import DiT, sincos_pos_embed_2d

F64_EPS = torch.finfo(torch.float64).eps


@pytest.fixture(autouse=True)
def one_thread():
    """The DiT tests use tiny models: one thread avoids OpenMP synchronisation that dominates at
    these sizes (measured 20× slower with 2 threads on a loaded 2-core runner). Restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = DiTConfig(name="tiny", hidden_size=32, depth=2, num_heads=4, patch_size=2, num_classes=10)


# ----------------------------------------------------------------------------- reference

def numpy_pos_embed(dim: int, grid: int) -> np.ndarray:
    """MAE's get_2d_sincos_pos_embed, transcribed with numpy (w-major meshgrid, float32 grid)."""
    gw, gh = np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32)
    mesh = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, 1, grid, grid)

    def one(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    return np.concatenate([one(dim // 2, mesh[0]), one(dim // 2, mesh[1])], axis=1)


def _linear(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _layer_norm(x):
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + 1e-6)


def _gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def reference_forward(state: dict, cfg: DiTConfig, x, t, y, dtype: torch.dtype = torch.float64):
    """DiT forward from a state dict, evaluated in ``dtype`` (float64: the gold reference);
    returns (output (N, C_out, H, W), [(q, k, v) per block])."""
    sd = {k: v.to(dtype) for k, v in state.items()}
    n, c, side, _ = x.shape
    p, hid, heads = cfg.patch_size, cfg.hidden_size, cfg.num_heads
    g = side // p
    patches = x.to(dtype).reshape(n, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(n, g * g, c * p * p)
    tok = patches @ sd["x_embedder.proj.weight"].reshape(hid, -1).T + sd["x_embedder.proj.bias"] + sd["pos_embed"]
    freqs = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float32) / 128)
    args = t.float()[:, None] * freqs[None]
    t_freq = torch.cat([torch.cos(args), torch.sin(args)], -1).to(dtype)
    t_emb = _linear(torch.nn.functional.silu(_linear(t_freq, sd, "t_embedder.mlp.0")), sd, "t_embedder.mlp.2")
    cond = t_emb + sd["y_embedder.embedding_table.weight"][y]
    silu_c = torch.nn.functional.silu(cond)
    captured = []
    for i in range(cfg.depth):
        b = f"blocks.{i}"
        mod = _linear(silu_c, sd, f"{b}.adaLN_modulation.1").chunk(6, dim=1)
        h = _layer_norm(tok) * (1 + mod[1][:, None]) + mod[0][:, None]
        qkv = _linear(h, sd, f"{b}.attn.qkv").reshape(n, g * g, 3, heads, hid // heads)
        q, k, v = (qkv[:, :, j].transpose(1, 2) for j in range(3))  # (N, heads, T, d)
        captured.append((q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hid // heads), dim=-1) @ v
        tok = tok + mod[2][:, None] * _linear(att.transpose(1, 2).reshape(n, g * g, hid), sd, f"{b}.attn.proj")
        h = _layer_norm(tok) * (1 + mod[4][:, None]) + mod[3][:, None]
        mlp = _linear(_gelu_tanh(_linear(h, sd, f"{b}.mlp.fc1")), sd, f"{b}.mlp.fc2")
        tok = tok + mod[5][:, None] * mlp
    shift, scale = _linear(silu_c, sd, "final_layer.adaLN_modulation.1").chunk(2, dim=1)
    out = _linear(_layer_norm(tok) * (1 + scale[:, None]) + shift[:, None], sd, "final_layer.linear")
    co = cfg.out_channels
    out = out.reshape(n, g, g, p, p, co).permute(0, 5, 1, 3, 2, 4).reshape(n, co, side, side)
    return out, captured


def tiny_model(seed: int = 0, perturb: float = 0.3, latent: int = 8, cfg: DiTConfig = TINY) -> DiT:
    """A small DiT with the reference init and non-zero adaLN layers (so every path matters)."""
    torch.manual_seed(seed)
    model = DiT(cfg, latent).eval()
    perturb_zero_init(model, perturb, torch.Generator().manual_seed(seed + 1))
    return model


def tiny_inputs(gen, n: int = 3, latent: int = 8, cfg: DiTConfig = TINY):
    x = torch.randn(n, cfg.in_channels, latent, latent, generator=gen)
    t = torch.randint(0, 1000, (n,), generator=gen)
    y = torch.randint(0, cfg.num_classes, (n,), generator=gen)
    return x, t, y


def forward_tolerance(cfg: DiTConfig, ref: torch.Tensor) -> float:
    """Rounding bound for two float64 evaluations of the same network in different op orders.

    Each output passes through at most 2·depth + 4 chained products, each an inner product of length
    ≤ mlp_ratio·hidden; Higham's γ_n ≈ n·eps bounds each relative error, and errors add along the
    chain. Scaled by the output magnitude (layer norms keep intermediate scales O(1))."""
    chain = 2 * cfg.depth + 4
    length = int(cfg.mlp_ratio * cfg.hidden_size)
    return chain * length * F64_EPS * float(ref.abs().max())


# ----------------------------------------------------------------------------- tests

def test_zoo_matches_published_table():
    expected = {"S": (384, 12, 6), "B": (768, 12, 12), "L": (1024, 24, 16), "XL": (1152, 28, 16)}
    assert len(DIT_CONFIGS) == 12
    for size, (hidden, depth, heads) in expected.items():
        for p in (2, 4, 8):
            cfg = DIT_CONFIGS[f"DiT-{size}/{p}"]
            assert (cfg.hidden_size, cfg.depth, cfg.num_heads, cfg.patch_size) == (hidden, depth, heads, p)
    assert DIT_CONFIGS["DiT-XL/2"].head_dim == 72 and DIT_CONFIGS["DiT-S/2"].head_dim == 64
    assert DIT_CONFIGS["DiT-XL/2"].tokens(256) == 256 and DIT_CONFIGS["DiT-XL/2"].tokens(512) == 1024
    with pytest.raises(ValueError, match="multiple of 64"):
        DIT_CONFIGS["DiT-XL/8"].latent_size(100)


@pytest.mark.parametrize("name, millions", [("DiT-S/2", 33), ("DiT-B/2", 130), ("DiT-L/2", 458), ("DiT-XL/2", 675)])
def test_parameter_counts_match_paper(name, millions):
    # DiT paper Table 4 lists 33M / 130M / 458M / 675M parameters (built on the meta device: no memory).
    model = DiT(DIT_CONFIGS[name], 32, initialize=False, device="meta")
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - millions) < 1  # the paper rounds loosely


def test_state_dict_names_and_shapes_match_published_xl2_checkpoint():
    sd = DiT(DIT_CONFIGS["DiT-XL/2"], 32, initialize=False, device="meta").state_dict()
    expected = {  # names and shapes of DiT-XL-2-256x256.pt
        "pos_embed": (1, 256, 1152),
        "x_embedder.proj.weight": (1152, 4, 2, 2), "x_embedder.proj.bias": (1152,),
        "t_embedder.mlp.0.weight": (1152, 256), "t_embedder.mlp.2.weight": (1152, 1152),
        "y_embedder.embedding_table.weight": (1001, 1152),
        "blocks.27.attn.qkv.weight": (3456, 1152), "blocks.27.attn.qkv.bias": (3456,),
        "blocks.27.attn.proj.weight": (1152, 1152), "blocks.0.mlp.fc1.weight": (4608, 1152),
        "blocks.0.mlp.fc2.weight": (1152, 4608), "blocks.0.adaLN_modulation.1.weight": (6912, 1152),
        "final_layer.linear.weight": (32, 1152), "final_layer.adaLN_modulation.1.weight": (2304, 1152),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "blocks.28.attn.qkv.weight" not in sd
    # 8 top-level tensors + 10 per block (the LayerNorms have no affine parameters) + 4 final.
    assert len(sd) == 8 + 10 * 28 + 4


def pos_embed_tolerance(grid: int) -> float:
    """Bound on |ours − numpy's| for the sin-cos table: both sides compute ω_j = 1/10000^(j/q)
    (identical correctly rounded j/q, then a pow of ≤ LIBM_ULPS ulp and a rounded reciprocal) and
    the argument x = pos·ω (one more rounding), so each argument errs by ≤ (LIBM_ULPS + 1)·eps·|x|
    relative on each side, |x| ≤ (grid − 1)·ω_0 = grid − 1; sin/cos (|·|' ≤ 1) pass that on and add
    ≤ LIBM_ULPS ulp of a value ≤ 1 each. torch (Sleef) and numpy (SVML on AVX-512) pow differ by an
    ulp on Intel Xeon, and positions up to 15 amplify it: a fixed 8·eps does not hold there."""
    return (2 * (LIBM_ULPS + 1) * (grid - 1) + 2 * LIBM_ULPS) * F64_EPS


def test_pos_embed_matches_mae_formula_and_is_in_state_dict():
    for dim, grid in ((32, 4), (1152, 16)):
        assert_close(sincos_pos_embed_2d(dim, grid), numpy_pos_embed(dim, grid), atol=pos_embed_tolerance(grid),
                     what=f"pos_embed dim={dim} grid={grid}")
    model = build_dit("DiT-S/8", 256)
    assert "pos_embed" in model.state_dict() and not model.pos_embed.requires_grad


def test_reference_init_zeroes_adaln_and_output():
    model = build_dit("DiT-S/8", 128)
    with torch.no_grad():
        assert all(float(b.adaLN_modulation[-1].weight.abs().max()) == 0 for b in model.blocks)
        assert float(model.final_layer.linear.weight.abs().max()) == 0
        # N(0, 0.02²) over 1001·384 entries: the sample std is within 1% with overwhelming probability.
        assert float(model.y_embedder.embedding_table.weight.std()) == pytest.approx(0.02, rel=0.01)


@pytest.mark.parametrize("kernel", ["sdpa", "exact"])
def test_forward_matches_independent_reference_in_float64(kernel, gen):
    model = tiny_model().double()
    model.set_kernel(kernel)
    x, t, y = tiny_inputs(gen)
    ref, _ = reference_forward(model.state_dict(), TINY, x, t, y)
    with torch.no_grad():
        out = model(x.double(), t, y)
    assert out.shape == (3, 8, 8, 8)  # learn_sigma: 2·4 output channels
    assert float(ref.abs().max()) > 0.1  # perturbed adaLN: a non-trivial output
    assert float((out - ref).abs().max()) <= forward_tolerance(TINY, ref)


def test_float32_forward_within_naive_float32_baseline(gen):
    # Tolerance from a naive baseline: the straightforward reference evaluated in float32 has some
    # error against float64; the model in float32 may be at most 4× that.
    model = tiny_model()
    x, t, y = tiny_inputs(gen)
    ref64, _ = reference_forward(model.state_dict(), TINY, x, t, y)
    naive32, _ = reference_forward(model.state_dict(), TINY, x, t, y, dtype=torch.float32)
    base = float((naive32.double() - ref64).abs().max())
    with torch.no_grad():
        out = model(x, t, y).double()
    assert float((out - ref64).abs().max()) <= 4 * max(base, torch.finfo(torch.float32).eps)


def test_config_variants_follow_reference_rules():
    no_cfg = DiTConfig(name="nodrop", hidden_size=32, depth=1, num_heads=2, patch_size=2, num_classes=7,
                       class_dropout_prob=0.0, learn_sigma=False)
    model = DiT(no_cfg, 4)
    assert model.y_embedder.embedding_table.weight.shape == (7, 32)  # no null-class row
    assert model.final_layer.linear.weight.shape == (2 * 2 * 4, 32)  # out_channels = in_channels
    with pytest.raises(ValueError, match="spatial shape"):
        model(torch.randn(1, 4, 6, 6), torch.zeros(1), torch.zeros(1, dtype=torch.long))


def test_unknown_kernel_or_parameter_is_refused():
    model = tiny_model()
    with pytest.raises(ValueError, match="unknown kernel"):
        model.set_kernel("nope")
    with pytest.raises(ValueError, match="does not take"):
        model.set_kernel("sdpa", {"eps": 0.1})
