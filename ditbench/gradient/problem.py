"""Validation of the gradient problem's six inputs (DESIGN §3.2, AS24 names).

L(X) = ½‖D(X)⁻¹exp(s·A1 X A2ᵀ) A3 Y − E‖²_F with A1, A2, A3, E ``(n, d)`` and X, Y ``(d, d)``.
Every routine in :mod:`ditbench.gradient` takes ``(a1, a2, a3, x, y, e, *, scale=None)`` and
starts with :func:`check_gradient_inputs`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_finite, check_float, check_logit_range, check_output, resolve_scale

# Default cap on the extra memory of the almost-linear routines, bytes (as the forward kernel).
DEFAULT_MEMORY_BUDGET = 2 << 30
_NAMES = ("a1", "a2", "a3", "x", "y", "e")


@dataclass(frozen=True)
class GradientShape:
    """What the routines need to know about a validated problem.

    n: tokens (rows of A1, A2, A3, E). d: feature dim. scale: resolved logit scale s.
    dtype / device: shared by all six inputs.
    """

    n: int
    d: int
    scale: float
    dtype: torch.dtype
    device: torch.device


def check_gradient_inputs(
    a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, scale: float | None
) -> GradientShape:
    """Validate shapes ``a1, a2, a3, e (n, d)``, ``x, y (d, d)``, a shared float dtype and
    device, finiteness and ``scale`` (``None`` → 1/√d). Raises ValueError naming the culprit."""
    tensors = dict(zip(_NAMES, (a1, a2, a3, x, y, e)))
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D; got shape {tuple(t.shape)}")
        check_float(name, t)
    n, d = a1.shape
    if n == 0 or d == 0:
        raise ValueError(f"empty problem: a1 has shape {tuple(a1.shape)}; n and d must be ≥ 1")
    for name in ("a2", "a3", "e"):
        if tuple(tensors[name].shape) != (n, d):
            raise ValueError(f"{name} has shape {tuple(tensors[name].shape)}; expected (n, d) = {(n, d)} like a1")
    for name in ("x", "y"):
        if tuple(tensors[name].shape) != (d, d):
            raise ValueError(f"{name} has shape {tuple(tensors[name].shape)}; expected (d, d) = {(d, d)}")
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) != 1:
        raise ValueError(f"a1, a2, a3, x, y, e must share a dtype; got {[str(t.dtype) for t in tensors.values()]}")
    devices = {t.device for t in tensors.values()}
    if len(devices) != 1:
        raise ValueError(f"a1, a2, a3, x, y, e must share a device; got {[str(t.device) for t in tensors.values()]}")
    for name, t in tensors.items():
        check_finite(name, t)
    return GradientShape(n=n, d=d, scale=resolve_scale(scale, d), dtype=a1.dtype, device=a1.device)


def check_products(routine: str, qx: Tensor, a2: Tensor, h: Tensor, scale: float) -> None:
    """ValueError when A1X or A3Y overflowed the dtype, or the logits s·(A1X)A2ᵀ would."""
    check_output(f"{routine}: A1·X", qx, "use float64 or smaller inputs")
    check_output(f"{routine}: A3·Y", h, "use float64 or smaller inputs")
    check_logit_range(qx, a2, scale, what=f"{routine}: the logits s·(A1X)A2ᵀ")


def check_gradient(routine: str, grad: Tensor) -> Tensor:
    """``grad`` if finite; else ValueError (the loss ½‖·‖² or its chain overflowed the dtype)."""
    return check_output(routine, grad, "the loss or its gradient overflow: use float64 or smaller inputs")


def check_memory_budget(memory_budget: float | None) -> float:
    """``None`` → :data:`DEFAULT_MEMORY_BUDGET`; otherwise a finite positive number of bytes."""
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else float(memory_budget)
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"memory_budget={memory_budget} must be finite and > 0 bytes")
    return budget


def check_poly_dtype(routine: str, dtype: torch.dtype) -> None:
    """The polynomial routines support float32 and float64 only (as the forward kernel)."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{routine} supports float32 and float64, not {dtype}")
