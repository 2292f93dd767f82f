"""Peer approximate-attention baselines (Performer, HyperAttention, Nyström, PolySketch).

Importing this package registers ``performer``, ``hyperattention``, ``nystrom``, ``polysketch``
and ``poly4_exact`` in :data:`ditbench.attention.registry.KERNELS`. See docs/peers.md.
"""
from __future__ import annotations

from ...errors import NormaliserError
from .hyperattention import hyper_attention
from .nystrom import iterative_pinv, nystrom_attention
from .performer import orthogonal_features, orthogonal_gaussian, performer_attention, positive_features
from .polysketch import degree2_sketch, poly4_attention, polysketch_attention, self_tensor

__all__ = [
    "NormaliserError", "hyper_attention", "iterative_pinv", "nystrom_attention",
    "orthogonal_features", "orthogonal_gaussian",
    "performer_attention", "positive_features", "degree2_sketch", "poly4_attention", "polysketch_attention",
    "self_tensor",
]
