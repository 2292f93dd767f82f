"""Alman–Song polynomial-method attention (DESIGN §3.1). Filled in by the foundation work."""
from __future__ import annotations

from torch import Tensor


def polynomial_attention(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, eps: float = 1e-3,
                         degree: int | None = None, radius: float | None = None) -> Tensor:
    raise NotImplementedError("polynomial_attention is being implemented")
