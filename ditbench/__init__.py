"""ditbench: when can attention, and its training gradient, be computed in almost-linear time?"""
from __future__ import annotations

from . import theory
from .attention import KERNELS, exact_attention, polynomial_attention, sdpa_attention
from . import gradient  # noqa: F401  (registers backward kernels)

__version__ = "0.1.0"
__all__ = ["KERNELS", "exact_attention", "polynomial_attention", "sdpa_attention", "theory", "__version__"]
