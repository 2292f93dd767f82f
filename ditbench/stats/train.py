"""Denoising score matching (Vincent 2011) on n training samples under the forward OU process.

Each step draws a batch of the n samples (with replacement), times t ~ U[t0, T] and noise z, and
minimises E‖√σ_t s(x_t, t) + z‖² — the σ_t-weighted score error plus a constant, i.e. exactly the
quantity :func:`ditbench.stats.metrics.score_errors` measures against the analytic score.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .mixture import ou_alpha, ou_sigma

T_MIN, T_MAX = 0.01, 5.0  # the time range of training, evaluation and sampling (α_T ≈ 0.08)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1500  # optimiser steps
    batch: int = 256
    lr: float = 2e-3  # Adam, cosine-decayed to lr/20 over the run
    t_min: float = T_MIN
    t_max: float = T_MAX

    def __post_init__(self) -> None:
        check_positive_int("steps", self.steps)
        check_positive_int("batch", self.batch)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr={self.lr} must be finite and > 0")
        if not (0 < self.t_min < self.t_max and math.isfinite(self.t_max)):
            raise ValueError(f"need 0 < t_min < t_max < inf; got t_min={self.t_min}, t_max={self.t_max}")


@dataclass(frozen=True)
class TrainResult:
    seconds: float  # wall time of the optimisation (synchronised on CUDA)
    final_loss: float  # mean DSM loss over the last 10 % of steps
    steps: int


def dsm_loss(net: nn.Module, x0: Tensor, t: Tensor, z: Tensor) -> Tensor:
    """E‖√σ_t s(x_t, t) + z‖² for x0, z (N, D), t (N,): a scalar."""
    sigma = ou_sigma(t)  # (N,)
    xt = ou_alpha(t)[:, None] * x0 + sigma.sqrt()[:, None] * z  # (N, D)
    return ((sigma.sqrt()[:, None] * net(xt, t) + z) ** 2).sum(-1).mean()


def train_dsm(net: nn.Module, data: Tensor, config: TrainConfig, gen: torch.Generator) -> TrainResult:
    """Train ``net`` in place on ``data`` (n, D) (net and data on one device); ``gen`` (CPU) draws
    the batches, times and noise, so a seed reproduces the run."""
    if data.ndim != 2 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (n ≥ 1, D); got {tuple(data.shape)}")
    if not bool(torch.isfinite(data).all()):
        raise ValueError("training data hold non-finite values")
    n, dim = data.shape
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps, eta_min=config.lr / 20)
    tail = max(1, config.steps // 10)
    losses: list[Tensor] = []
    net.train()
    start = time.perf_counter()
    for step in range(config.steps):
        idx = torch.randint(0, n, (config.batch,), generator=gen)  # (b,)
        t = config.t_min + (config.t_max - config.t_min) * torch.rand(config.batch, generator=gen,
                                                                    dtype=torch.float64)  # (b,)
        z = torch.randn(config.batch, dim, generator=gen, dtype=torch.float64)  # (b, D)
        loss = dsm_loss(net, data[idx.to(data.device)], t.to(data), z.to(data))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step >= config.steps - tail:
            losses.append(loss.detach())
    if data.device.type == "cuda":
        torch.cuda.synchronize(data.device)
    seconds = time.perf_counter() - start
    net.eval()
    final = float(torch.stack(losses).mean())
    if not math.isfinite(final):
        raise FloatingPointError(f"DSM training diverged: final loss {final} (lr={config.lr}, steps={config.steps})")
    return TrainResult(seconds=seconds, final_loss=final, steps=config.steps)
