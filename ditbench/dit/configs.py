"""The DiT model zoo as data (Peebles & Xie 2023, Table 1; facebookresearch/DiT ``models.py``).

``DIT_CONFIGS["DiT-XL/2"]`` is the architecture of the published ``DiT-XL-2-256x256.pt``. A config
fixes the network; the image size (hence the token count L) is chosen when a model is built,
because the published checkpoints exist at 256 and 512 px for the same architecture.
"""
from __future__ import annotations

from dataclasses import dataclass

from .._checks import check_positive_int

# The Stable Diffusion VAE used by DiT maps a (3, H, W) image to a (4, H/8, W/8) latent.
VAE_DOWNSAMPLE = 8
LATENT_CHANNELS = 4


@dataclass(frozen=True)
class DiTConfig:
    """One DiT architecture (everything but the input size)."""

    name: str  # registry key, e.g. "DiT-XL/2"
    hidden_size: int  # token width C (= heads × head dim)
    depth: int  # number of DiT blocks (attention layers)
    num_heads: int  # attention heads per block
    patch_size: int  # p: each token is a p×p patch of the latent
    mlp_ratio: float = 4.0  # MLP hidden width / C
    in_channels: int = LATENT_CHANNELS  # latent channels
    num_classes: int = 1000  # ImageNet classes (+1 "null" row for classifier-free guidance)
    class_dropout_prob: float = 0.1  # > 0 adds the null-class row to y_embedder.embedding_table
    learn_sigma: bool = True  # True: output mean and variance channels (out_channels = 2·in)

    @property
    def head_dim(self) -> int:
        """d: per-head feature dimension (64 for S, B and L; 72 for XL)."""
        return self.hidden_size // self.num_heads

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    def latent_size(self, image_size: int) -> int:
        """Side of the (in_channels, s, s) latent for an image of ``image_size`` px."""
        check_positive_int("image_size", image_size)
        if image_size % (VAE_DOWNSAMPLE * self.patch_size):
            raise ValueError(
                f"image_size={image_size} must be a multiple of {VAE_DOWNSAMPLE * self.patch_size} "
                f"(VAE downsampling {VAE_DOWNSAMPLE} × patch size {self.patch_size}) for {self.name}"
            )
        return image_size // VAE_DOWNSAMPLE

    def tokens(self, image_size: int) -> int:
        """L = (latent side / p)²: the attention sequence length."""
        return (self.latent_size(image_size) // self.patch_size) ** 2


def _zoo() -> dict[str, DiTConfig]:
    # (hidden size, depth, heads) per model size, as in DiT Table 1 / models.py.
    sizes = {"S": (384, 12, 6), "B": (768, 12, 12), "L": (1024, 24, 16), "XL": (1152, 28, 16)}
    zoo: dict[str, DiTConfig] = {}
    for size in ("XL", "L", "B", "S"):  # same order as DiT_models
        hidden, depth, heads = sizes[size]
        for patch in (2, 4, 8):
            name = f"DiT-{size}/{patch}"
            zoo[name] = DiTConfig(name=name, hidden_size=hidden, depth=depth, num_heads=heads, patch_size=patch)
    return zoo


DIT_CONFIGS: dict[str, DiTConfig] = _zoo()


def get_config(name: str) -> DiTConfig:
    try:
        return DIT_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown DiT config {name!r}; known: {sorted(DIT_CONFIGS)}") from None
