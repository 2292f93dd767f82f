"""Peer approximate-attention baselines (Performer, HyperAttention, Nyström, PolySketch)."""
