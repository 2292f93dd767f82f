"""Attention-training gradients (DESIGN §3.2); registers op="backward" kernels.

L(X) = ½‖D(X)⁻¹exp(s·A1XA2ᵀ)A3Y − E‖²_F, A1, A2, A3, E ``(n, d)``, X, Y ``(d, d)``. Every routine
takes ``(a1, a2, a3, x, y, e, *, scale=None)`` and returns dL/dX ``(d, d)`` (or the loss).
"""
from __future__ import annotations

from .autograd import PolynomialGradientInfo, polynomial_autograd_gradient
from .bounds import derivative_relative_error, gradient_error_bound, logit_gradient_factor, probability_error
from .exact import attention_loss, autograd_gradient, exact_gradient
from .lowrank import LowRankInfo, lowrank_gradient
from .problem import DEFAULT_MEMORY_BUDGET, check_gradient_inputs
from . import registry  # noqa: F401  (registers the backward kernels)

__all__ = [
    "attention_loss", "exact_gradient", "autograd_gradient", "lowrank_gradient", "polynomial_autograd_gradient",
    "LowRankInfo", "PolynomialGradientInfo", "gradient_error_bound", "logit_gradient_factor",
    "probability_error", "derivative_relative_error", "check_gradient_inputs", "DEFAULT_MEMORY_BUDGET",
]
