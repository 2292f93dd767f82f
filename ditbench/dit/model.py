"""A latent DiT whose parameter names, shapes, initialisation and forward match the published
facebookresearch/DiT ``models.py`` (so its checkpoints load unchanged), with the attention kernel
taken from :data:`ditbench.attention.KERNELS` by name.

Shapes: N batch, C latent channels, H = W latent side, p patch size, T = L = (H/p)² tokens,
D hidden size, heads × d = D.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
import torch.nn as nn
from torch import Tensor

from .._checks import check_positive_int
from ..attention import get_kernel
from .configs import DiTConfig, get_config

Device = torch.device | str | None
# Receives (module, q, k, v, scale) from inside an attention layer; set by ditbench.dit.capture.
Observer = Callable[["Attention", Tensor, Tensor, Tensor, float], None]


def _linear_at(seq: nn.Module, index: int) -> nn.Linear:
    """``seq[index]`` of an nn.Sequential, typed as the nn.Linear it is (indexing is typed Module)."""
    layer = cast(nn.Sequential, seq)[index]
    assert isinstance(layer, nn.Linear), type(layer)
    return layer


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation: x (N, T, D), shift/scale (N, D)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


#################################################################################
#                   Layers with the names timm gives them                       #
#################################################################################

class PatchEmbed(nn.Module):
    """(N, C, H, W) latent → (N, T, D) tokens with a stride-p convolution (timm's ``PatchEmbed``)."""

    def __init__(self, input_size: int, patch_size: int, in_chans: int, embed_dim: int, device: Device = None) -> None:
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (input_size // patch_size, input_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=True, device=device)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != (self.grid_size[0] * self.patch_size[0],) * 2:
            raise ValueError(f"latent of spatial shape {tuple(x.shape[-2:])}; this model expects "
                             f"{(self.grid_size[0] * self.patch_size[0],) * 2}")
        x = self.proj(x)  # (N, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2)  # (N, T, D)


class Attention(nn.Module):
    """Multi-head self-attention with timm's parameter names (``qkv``, ``proj``).

    The product softmax(scale·q kᵀ) v is computed by the registry kernel ``kernel`` called as
    ``kernel(q, k, v, scale=scale, **kernel_params)`` on ``(N, heads, T, d)`` tensors.
    """

    def __init__(self, dim: int, num_heads: int, *, kernel: str = "sdpa",
                 kernel_params: Mapping[str, Any] | None = None, device: Device = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5  # timm / DiT logit scale 1/√d
        self.qkv = nn.Linear(dim, dim * 3, bias=True, device=device)
        self.proj = nn.Linear(dim, dim, bias=True, device=device)
        self.set_kernel(kernel, kernel_params)
        self.observer: Observer | None = None  # see ditbench.dit.capture.capture_dit

    def set_kernel(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Switch the attention kernel (validated against the registry now, not at first call)."""
        kernel = get_kernel(name)
        params = dict(params or {})
        unknown = set(params) - set(kernel.params)
        if unknown:
            raise ValueError(f"kernel {name!r} does not take parameter(s) {sorted(unknown)}; "
                             f"it accepts {sorted(kernel.params) or 'none'}")
        # Keep the name, not the Kernel object: modules stay deep-copyable and picklable.
        self.kernel_name, self.kernel_params = name, params

    def forward(self, x: Tensor) -> Tensor:
        n, t, c = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, self.head_dim)  # (N, T, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, h, T, d)
        if self.observer is not None:
            self.observer(self, q, k, v, self.scale)
        kernel = get_kernel(self.kernel_name)
        x = kernel(q, k, v, scale=self.scale, **self.kernel_params)  # (N, h, T, d)
        x = x.transpose(1, 2).reshape(n, t, c)  # (N, T, D)
        return self.proj(x)  # (N, T, D)


class Mlp(nn.Module):
    """fc1 → tanh-GELU → fc2 (timm's ``Mlp`` names; dropout 0 as in DiT)."""

    def __init__(self, in_features: int, hidden_features: int, device: Device = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=True, device=device)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, in_features, bias=True, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (N, T, D)


#################################################################################
#               Embedding Layers for Timesteps and Class Labels                 #
#################################################################################

class TimestepEmbedder(nn.Module):
    """(N,) diffusion timesteps → (N, D) via a sinusoidal code and a 2-layer MLP."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256, device: Device = None) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True, device=device),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True, device=device),
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
        """(N,) possibly fractional timesteps → (N, dim) [cos | sin] code (GLIDE), in float32."""
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)  # (half,)
        args = t[:, None].float() * freqs[None].to(t.device)  # (N, half)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (N, 2·half)
        if dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)  # (N, dim)
        return emb

    def forward(self, t: Tensor) -> Tensor:
        t_freq = self.timestep_embedding(t, self.frequency_embedding_size)  # (N, 256) float32
        # The reference feeds float32 here; casting lets a float64 copy of the model run.
        return self.mlp(t_freq.to(_linear_at(self.mlp, 0).weight.dtype))  # (N, D)


class LabelEmbedder(nn.Module):
    """(N,) class labels → (N, D); row ``num_classes`` is the null class for classifier-free guidance."""

    def __init__(self, num_classes: int, hidden_size: int, dropout_prob: float, device: Device = None) -> None:
        super().__init__()
        use_cfg_embedding = int(dropout_prob > 0)
        # Passing the (uninitialised) weight skips nn.Embedding's own normal_ init: DiT.initialize_weights
        # sets it, and on the meta device that init would import torch's Python decompositions (seconds).
        table = torch.empty(num_classes + use_cfg_embedding, hidden_size, device=device)
        self.embedding_table = nn.Embedding(num_classes + use_cfg_embedding, hidden_size, _weight=table)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def token_drop(self, labels: Tensor, force_drop_ids: Tensor | None = None) -> Tensor:
        if force_drop_ids is None:
            drop_ids = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
        else:
            drop_ids = force_drop_ids == 1
        return torch.where(drop_ids, self.num_classes, labels)

    def forward(self, labels: Tensor, train: bool, force_drop_ids: Tensor | None = None) -> Tensor:
        if (train and self.dropout_prob > 0) or force_drop_ids is not None:
            labels = self.token_drop(labels, force_drop_ids)
        return self.embedding_table(labels)  # (N, D)


#################################################################################
#                                 Core DiT Model                                #
#################################################################################

class DiTBlock(nn.Module):
    """A transformer block with adaLN-Zero conditioning on c = t_emb + y_emb."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0, device: Device = None,
                 **attn_kwargs: Any) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads, device=device, **attn_kwargs)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio), device=device)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True,
                                                                   device=device))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))  # (N, T, D)
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))  # (N, T, D)
        return x


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm and a linear map from D to p²·out_channels per token."""

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int, device: Device = None) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True, device=device)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True,
                                                                   device=device))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))  # (N, T, p²·out)


class DiT(nn.Module):
    """Diffusion transformer on (N, C, H, W) latents, conditioned on timesteps and class labels."""

    def __init__(self, config: DiTConfig, input_size: int, *, kernel: str = "sdpa",
                 kernel_params: Mapping[str, Any] | None = None, initialize: bool = True,
                 device: Device = None) -> None:
        super().__init__()
        if input_size % config.patch_size:
            raise ValueError(f"latent size {input_size} must be a multiple of patch size {config.patch_size}")
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.out_channels
        self.patch_size = config.patch_size
        self.num_heads = config.num_heads
        d = config.hidden_size
        self.x_embedder = PatchEmbed(input_size, config.patch_size, config.in_channels, d, device=device)
        self.t_embedder = TimestepEmbedder(d, device=device)
        self.y_embedder = LabelEmbedder(config.num_classes, d, config.class_dropout_prob, device=device)
        # Fixed 2-D sin-cos table; a frozen Parameter so it is saved in (and loaded from) the state dict.
        self.pos_embed = nn.Parameter(torch.zeros(1, self.x_embedder.num_patches, d, device=device),
                                      requires_grad=False)
        self.blocks = nn.ModuleList([
            DiTBlock(d, config.num_heads, config.mlp_ratio, device=device, kernel=kernel, kernel_params=kernel_params)
            for _ in range(config.depth)
        ])
        self.final_layer = FinalLayer(d, config.patch_size, self.out_channels, device=device)
        if initialize:
            self.initialize_weights()

    def initialize_weights(self) -> None:
        """The reference initialisation, including adaLN-Zero (modulation and output layers zeroed)."""
        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        self.apply(_basic_init)
        grid = self.x_embedder.grid_size[0]
        self.pos_embed.data.copy_(sincos_pos_embed_2d(self.pos_embed.shape[-1], grid).float().unsqueeze(0))
        w = self.x_embedder.proj.weight.data  # (D, C, p, p), initialised like an nn.Linear
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(cast(Tensor, self.x_embedder.proj.bias))  # bias=True: never None
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        nn.init.normal_(_linear_at(self.t_embedder.mlp, 0).weight, std=0.02)
        nn.init.normal_(_linear_at(self.t_embedder.mlp, 2).weight, std=0.02)
        for layer in [_linear_at(block.adaLN_modulation, -1) for block in self.dit_blocks()] + [
            _linear_at(self.final_layer.adaLN_modulation, -1), self.final_layer.linear
        ]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def dit_blocks(self) -> list[DiTBlock]:
        """``self.blocks`` as the DiTBlocks they are (an nn.ModuleList iterates as Module)."""
        return cast(list[DiTBlock], list(self.blocks))

    def attention_layers(self) -> list[Attention]:
        return [block.attn for block in self.dit_blocks()]

    def set_kernel(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Use registry kernel ``name`` with ``params`` in every block."""
        for attn in self.attention_layers():
            attn.set_kernel(name, params)

    def unpatchify(self, x: Tensor) -> Tensor:
        """(N, T, p²·C_out) → (N, C_out, H, W)."""
        c, p = self.out_channels, self.patch_size
        h = w = int(round(x.shape[1] ** 0.5))
        x = x.reshape(x.shape[0], h, w, p, p, c)  # (N, h, w, p, p, C_out)
        x = torch.einsum("nhwpqc->nchpwq", x)  # (N, C_out, h, p, w, p)
        return x.reshape(x.shape[0], c, h * p, w * p)  # (N, C_out, H, W)

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """x: (N, C, H, W) latents; t: (N,) timesteps; y: (N,) labels → (N, C_out, H, W)."""
        x = self.x_embedder(x) + self.pos_embed  # (N, T, D)
        c = self.t_embedder(t) + self.y_embedder(y, self.training)  # (N, D)
        for block in self.blocks:
            x = block(x, c)  # (N, T, D)
        x = self.final_layer(x, c)  # (N, T, p²·C_out)
        return self.unpatchify(x)  # (N, C_out, H, W)


def sincos_pos_embed_2d(embed_dim: int, grid_size: int) -> Tensor:
    """MAE/DiT fixed positional table, float64 (T, embed_dim) with T = grid_size².

    First half encodes the row index, second half the column index; each half is [sin | cos]
    at frequencies 10000^(−j/(embed_dim/4)).
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim={embed_dim} must be a multiple of 4 for a 2-D sin-cos table")
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")  # (g, g) each
    quarter = embed_dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (D/4,)

    def one_axis(pos: Tensor) -> Tensor:
        out = pos.reshape(-1, 1) * omega  # (T, D/4)
        return torch.cat([out.sin(), out.cos()], dim=1)  # (T, D/2)

    # The reference's meshgrid puts w first, so its "grid_h" half is the column index.
    return torch.cat([one_axis(cols), one_axis(rows)], dim=1)  # (T, D)


#################################################################################
#                                   Builders                                    #
#################################################################################

def build_dit(name: str, image_size: int, *, kernel: str = "sdpa", kernel_params: Mapping[str, Any] | None = None,
              seed: int | None = 0, perturb: float = 0.0, initialize: bool = True, depth: int | None = None) -> DiT:
    """``DiT-XL/2`` etc. for ``image_size``-px images (latent side image_size/8), on CPU in eval mode.

    seed: seeds the reference initialisation (``None``: use the global RNG).
    perturb: if > 0, add N(0, perturb²) to the layers adaLN-Zero sets to zero (modulation and
        output layers), so a random-init model's blocks actually act (see :func:`perturb_zero_init`).
    initialize: False leaves the weights uninitialised (about half the build time of DiT-XL/2);
        only for a model whose every parameter is loaded from a checkpoint next.
    depth: keep only this many blocks (a cheaper model with the same per-block cost; its seeded
        weights differ from the first blocks of the full-depth model).
    """
    config = get_config(name)
    if depth is not None:
        check_positive_int("depth", depth)
        if depth > config.depth:
            raise ValueError(f"depth={depth} exceeds {name}'s depth {config.depth}")
        config = dataclasses.replace(config, depth=depth)
    latent = config.latent_size(image_size)
    # Build on the meta device, then allocate once: torch's default Linear init would otherwise
    # run on 675M parameters only to be overwritten by the reference init.
    model = DiT(config, latent, kernel=kernel, kernel_params=kernel_params, initialize=False, device="meta")
    model = model.to_empty(device="cpu")
    if not initialize:
        return model.eval()
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model.initialize_weights()
    if perturb:
        perturb_zero_init(model, perturb, torch.Generator().manual_seed(0 if seed is None else seed + 1))
    return model.eval()


@torch.no_grad()
def perturb_zero_init(model: DiT, std: float, generator: torch.Generator) -> None:
    """Fill the adaLN-Zero-initialised layers with N(0, std²) noise.

    With the published init every gate is zero: blocks are the identity and the output is zero,
    so attention has no effect on the output and activations are not those of a trained model.
    """
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"perturb std={std} must be finite and > 0")
    layers = [_linear_at(b.adaLN_modulation, -1) for b in model.dit_blocks()] + [
        _linear_at(model.final_layer.adaLN_modulation, -1), model.final_layer.linear]
    for layer in layers:
        for p in (layer.weight, layer.bias):
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * std)
