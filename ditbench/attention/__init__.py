"""Attention kernels and their registry (forward op)."""
from __future__ import annotations

from .registry import KERNELS, Kernel, Problem, get_kernel, register
from .exact import exact_attention, sdpa_attention, uniform_attention
from .features import PolynomialFeatures
from .polynomial import polynomial_attention
from . import polynomial_triton  # noqa: F401  (registers polynomial_triton; triton loads on first call)
from . import peers  # noqa: F401  (registers peer baselines)

__all__ = [
    "KERNELS", "Kernel", "Problem", "get_kernel", "register",
    "exact_attention", "sdpa_attention", "uniform_attention", "polynomial_attention",
    "PolynomialFeatures",
]
