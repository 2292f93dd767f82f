"""Reverse-SDE sampling: dY = [½Y + s(Y, T − τ)] dτ + dW from Y_0 ~ N(0, I_D) at t = T down to t0,
Euler–Maruyama on a geometric time grid (steps shrink with σ_t, where the score grows like 1/σ_t).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import check_positive_int
from .metrics import ScoreFn


def time_grid(t_max: float, t_min: float, steps: int) -> Tensor:
    """Decreasing float64 times t_max = t_0 > … > t_steps = t_min, geometric, shape (steps + 1,)."""
    check_positive_int("steps", steps)
    if not (0 < t_min < t_max and math.isfinite(t_max)):
        raise ValueError(f"need 0 < t_min < t_max < inf; got t_min={t_min}, t_max={t_max}")
    return torch.logspace(math.log10(t_max), math.log10(t_min), steps + 1, dtype=torch.float64)


@torch.no_grad()
def reverse_sde(score: ScoreFn, n: int, dim: int, gen: torch.Generator, *, t_max: float, t_min: float,
                steps: int = 200, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
    """n samples (n, dim) of the reverse process driven by ``score``, ending at t_min (returned on CPU)."""
    check_positive_int("n", n)
    grid = time_grid(t_max, t_min, steps)  # (steps + 1,)
    y = torch.randn(n, dim, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)  # (n, D)
    for t_now, t_next in zip(grid[:-1].tolist(), grid[1:].tolist()):
        dt = t_now - t_next  # > 0
        t = torch.full((n,), t_now, dtype=dtype, device=device)  # (n,)
        drift = 0.5 * y + score(y, t)  # (n, D)
        noise = torch.randn(n, dim, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
        y = y + dt * drift + math.sqrt(dt) * noise  # (n, D)
    out = y.double().cpu()
    if not bool(torch.isfinite(out).all()):
        raise FloatingPointError(f"reverse SDE diverged: {int((~torch.isfinite(out)).sum())} non-finite values")
    return out
