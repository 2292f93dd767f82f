"""Score networks for E7/E8: the paper's latent form and an unstructured ambient baseline.

Both are built around the same small transformer :class:`TokenTransformer` (ditbench's DiT blocks
with adaLN-Zero conditioning on t, the attention kernel taken from the registry by name):

* ``latent``  s_W(x, t) = (W_B f(W_Bᵀx, t) − x)/σ_t with W_B ∈ R^{D×d0} learned, its columns kept
  orthonormal (``torch.nn.utils.parametrizations.orthogonal``), and f over L = d0/p latent
  tokens of p entries (Hu et al. 2024: d0 = d·L after a reshape).
* ``ambient`` s(x, t) = (g(x, t) − x)/σ_t with g the same transformer over L tokens of D/L
  ambient entries each — the same architecture and token count, no subspace. Its width is chosen
  so that its parameter count is the closest to the latent network's (:func:`matched_width`).

Both share the −x/σ_t term (the score of pure noise), so each network learns a denoiser and the
only difference is the learned projection. Shapes: N batch, D ambient, d0 latent, L tokens,
C hidden width.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from ..dit.model import DiTBlock, FinalLayer, TimestepEmbedder
from .mixture import ou_sigma

FREQUENCY_CHANNELS = 64  # sinusoidal code size of t (DiT uses 256 for 1000 steps; 64 is ample here)
TIME_SCALE = 1000.0 / 5.0  # t ∈ [0, T=5] mapped onto DiT's timestep range [0, 1000]


@dataclass(frozen=True)
class NetworkSpec:
    """What is built: ``kind`` (a key of :data:`NETWORKS`) and the sizes of f."""

    kind: str  # "latent" | "ambient"
    ambient_dim: int  # D
    latent_dim: int  # d0
    hidden: int = 32  # C of the latent network (the ambient one's is matched to its parameter count)
    depth: int = 2  # DiT blocks
    heads: int = 2
    token_dim: int = 1  # p: latent entries per token, L = d0/p
    mlp_ratio: float = 2.0
    kernel: str = "sdpa"  # attention kernel of every block (ditbench.attention.KERNELS)

    def __post_init__(self) -> None:
        if self.kind not in NETWORKS:
            raise ValueError(f"network {self.kind!r} is not allowed; allowed values: {sorted(NETWORKS)}")
        for name in ("ambient_dim", "latent_dim", "hidden", "depth", "heads", "token_dim"):
            check_positive_int(name, getattr(self, name))
        if self.latent_dim % self.token_dim:
            raise ValueError(f"latent_dim d0={self.latent_dim} must be a multiple of token_dim p={self.token_dim}")
        if self.ambient_dim % self.tokens:
            raise ValueError(f"ambient_dim D={self.ambient_dim} must be a multiple of the token count "
                             f"L = d0/p = {self.tokens} (the ambient baseline splits x into L tokens)")
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} must be divisible by heads={self.heads}")

    @property
    def tokens(self) -> int:
        """L = d0/p, the same for both networks."""
        return self.latent_dim // self.token_dim


class TokenTransformer(nn.Module):
    """f: (N, L·p) vector, t (N,) → (N, L·p): split into L tokens of p entries, embed, DiT blocks, back."""

    def __init__(self, tokens: int, token_dim: int, hidden: int, depth: int, heads: int, mlp_ratio: float,
                 kernel: str) -> None:
        super().__init__()
        self.tokens, self.token_dim = tokens, token_dim
        self.embed = nn.Linear(token_dim, hidden)
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, hidden))  # learned: L is small and 1-D
        self.t_embedder = TimestepEmbedder(hidden, frequency_embedding_size=FREQUENCY_CHANNELS)
        self.blocks = nn.ModuleList([DiTBlock(hidden, heads, mlp_ratio, kernel=kernel) for _ in range(depth)])
        self.final = FinalLayer(hidden, patch_size=1, out_channels=token_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        """DiT's initialisation: Xavier linears, N(0, 0.02²) position and t-MLP weights, adaLN-Zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.pos_embed, std=0.02)
        mlp = self.t_embedder.mlp
        for layer in (mlp[0], mlp[2]):
            assert isinstance(layer, nn.Linear)
            nn.init.normal_(layer.weight, std=0.02)
        zeroed = [m for m in self.modules() if isinstance(m, nn.Sequential) and m is not mlp]  # adaLN modulations
        for seq in zeroed:
            layer = seq[-1]
            assert isinstance(layer, nn.Linear)
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.final.linear.bias)

    def forward(self, v: Tensor, t: Tensor) -> Tensor:
        n = v.shape[0]
        x = self.embed(v.reshape(n, self.tokens, self.token_dim)) + self.pos_embed  # (N, L, C)
        c = self.t_embedder(t * TIME_SCALE)  # (N, C)
        for block in self.blocks:
            x = block(x, c)  # (N, L, C)
        return self.final(x, c).reshape(n, self.tokens * self.token_dim)  # (N, L·p)


class LatentScoreNet(nn.Module):
    """s_W(x, t) = (W_B f(W_Bᵀx, t) − x)/σ_t, W_B (D, d0) with orthonormal columns."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        lift = nn.Linear(spec.latent_dim, spec.ambient_dim, bias=False)  # weight (D, d0) = W_B
        # Householder map: O(D·d0²) per call (the default matrix_exp would build a D×D matrix).
        self.lift = nn.utils.parametrizations.orthogonal(lift, orthogonal_map="householder")
        self.f = TokenTransformer(spec.tokens, spec.token_dim, spec.hidden, spec.depth, spec.heads,
                                  spec.mlp_ratio, spec.kernel)

    @property
    def projection(self) -> Tensor:
        """W_B (D, d0)."""
        weight = self.lift.weight
        assert isinstance(weight, Tensor)
        return weight

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        w = self.projection  # (D, d0)
        inner = self.f(x @ w, t)  # (N, d0)
        return (inner @ w.T - x) / ou_sigma(t)[:, None]  # (N, D)


class AmbientScoreNet(nn.Module):
    """s(x, t) = (g(x, t) − x)/σ_t with g the transformer over L tokens of D/L ambient entries."""

    projection = None  # no subspace estimate

    def __init__(self, spec: NetworkSpec, hidden: int | None = None) -> None:
        super().__init__()
        self.spec = spec
        width = matched_width(spec) if hidden is None else hidden
        self.g = TokenTransformer(spec.tokens, spec.ambient_dim // spec.tokens, width, spec.depth, spec.heads,
                                  spec.mlp_ratio, spec.kernel)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return (self.g(x, t) - x) / ou_sigma(t)[:, None]  # (N, D)


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters (the orthogonal parametrization's stored D×d0 matrix counts once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _transformer_count(tokens: int, token_dim: int, hidden: int, depth: int, mlp_ratio: float) -> int:
    """Closed-form parameter count of :class:`TokenTransformer` (checked against torch in the tests)."""
    c, m = hidden, int(hidden * mlp_ratio)
    block = (3 * c * c + 3 * c) + (c * c + c) + (c * m + m) + (m * c + c) + (c * 6 * c + 6 * c)
    final = (c * token_dim + token_dim) + (c * 2 * c + 2 * c)
    time = (FREQUENCY_CHANNELS * c + c) + (c * c + c)
    return (token_dim * c + c) + tokens * c + time + depth * block + final


def latent_count(spec: NetworkSpec) -> int:
    return spec.ambient_dim * spec.latent_dim + _transformer_count(spec.tokens, spec.token_dim, spec.hidden,
                                                                   spec.depth, spec.mlp_ratio)


def matched_width(spec: NetworkSpec) -> int:
    """The ambient network's width (a multiple of ``heads``, ≤ 8·hidden) whose parameter count is the
    closest to the latent network's for the same D, d0, depth and token count."""
    target = latent_count(spec)
    widths = range(spec.heads, 8 * spec.hidden + 1, spec.heads)
    return min(widths, key=lambda c: abs(_transformer_count(spec.tokens, spec.ambient_dim // spec.tokens, c,
                                                            spec.depth, spec.mlp_ratio) - target))


ScoreNet = LatentScoreNet | AmbientScoreNet
NETWORKS: Mapping[str, Callable[[NetworkSpec], nn.Module]] = {
    "latent": LatentScoreNet,
    "ambient": AmbientScoreNet,
}


def build_network(spec: NetworkSpec, seed: int) -> nn.Module:
    """The network of ``spec`` with a seeded initialisation (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NETWORKS[spec.kind](spec)
