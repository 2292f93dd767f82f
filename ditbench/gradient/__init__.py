"""Attention-training gradients (DESIGN §3.2); registers op="backward" kernels."""
