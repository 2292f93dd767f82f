"""Attention kernels and their registry (forward op).

Importing this package registers every kernel, built-in and plugin, through the one path
:func:`~ditbench.attention.registry.load_kernels` (docs/measure.md, "Kernels").
"""
from __future__ import annotations

from .registry import KERNELS, Kernel, Problem, get_kernel, load_kernels, register
from .exact import exact_attention, sdpa_attention, uniform_attention
from .features import PolynomialFeatures
from .polynomial import polynomial_attention

load_kernels()

__all__ = [
    "KERNELS", "Kernel", "Problem", "get_kernel", "load_kernels", "register",
    "exact_attention", "sdpa_attention", "uniform_attention", "polynomial_attention",
    "PolynomialFeatures",
]
