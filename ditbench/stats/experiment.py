"""One E7/E8 point: draw a latent mixture, train one score network by DSM on n samples, and
measure it — score error on/off the subspace, subspace error, sample distance, projected samples.

Seeds: ``seed`` draws B and the mixture; seed + 1 the n training samples; seed + 2 the network's
initialisation; seed + 3 the training batches; seed + 4 the evaluation points and every sample
used by the distance. The two networks of one seed therefore see the same data and are scored on
the same points (a paired comparison).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .metrics import ScoreErrors, median_bandwidth, mmd2, score_errors, subspace_error
from .mixture import LatentMixture, MixtureSpec
from .networks import NetworkSpec, build_network, parameter_count
from .sampling import reverse_sde
from .train import TrainConfig, TrainResult, train_dsm

EVAL_POINTS = 2048  # (x_t, t) pairs for the time-averaged score error (stratified in t)
SAMPLE_POINTS = 512  # reverse-SDE samples and fresh data points for the MMD
SDE_STEPS = 100  # geometric grid over [0.01, 5]: Δt/t ≈ 6 %
PROJECTED_POINTS = 150  # of each kind written to the results row (for the report's scatter)


@dataclass(frozen=True)
class StatsConfig:
    """Everything one point depends on (besides the device and dtype it runs in)."""

    network: NetworkSpec
    samples: int  # n, the training-set size
    mixture: MixtureSpec
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int("samples", self.samples)
        if (self.network.ambient_dim, self.network.latent_dim) != (self.mixture.ambient_dim,
                                                                   self.mixture.latent_dim):
            raise ValueError("network and mixture must agree on D and d0")


@dataclass(frozen=True)
class Evaluation:
    """A trained network and its measured metrics (``row``: the results columns it fills)."""

    net: nn.Module
    mixture: LatentMixture
    train: TrainResult
    errors: ScoreErrors
    row: dict[str, Any]


def eval_points(mixture: LatentMixture, gen: torch.Generator, count: int, t_min: float,
                t_max: float) -> tuple[Tensor, Tensor]:
    """float64 x_t (count, D) and t (count,) with t stratified on [t_min, t_max] and x0 ~ p_0."""
    x0 = mixture.sample(count, gen)  # (count, D)
    u = (torch.arange(count, dtype=torch.float64) + torch.rand(count, generator=gen, dtype=torch.float64)) / count
    t = t_min + (t_max - t_min) * u  # (count,) one point per stratum
    z = torch.randn(x0.shape, generator=gen, dtype=torch.float64)  # (count, D)
    return mixture.noised(x0, t, z), t


def run_point(config: StatsConfig, *, device: str = "cpu", dtype: torch.dtype = torch.float32) -> Evaluation:
    """Train and measure one network (module doc); float64 for every metric."""
    mixture = config.mixture.build(torch.float64)
    data = mixture.sample(config.samples, torch.Generator().manual_seed(config.seed + 1))  # (n, D)
    net = build_network(config.network, config.seed + 2).to(device=device, dtype=dtype)
    result = train_dsm(net, data.to(device=device, dtype=dtype), config.train,
                       torch.Generator().manual_seed(config.seed + 3))
    gen = torch.Generator().manual_seed(config.seed + 4)
    tc = config.train

    def score(x: Tensor, t: Tensor) -> Tensor:
        return net(x.to(device=device, dtype=dtype), t.to(device=device, dtype=dtype))

    x, t = eval_points(mixture, gen, EVAL_POINTS, tc.t_min, tc.t_max)
    errors = score_errors(score, mixture, x, t)
    fresh = mixture.sample(SAMPLE_POINTS, gen)  # (m, D) the distance's reference sample
    fresh2 = mixture.sample(SAMPLE_POINTS, gen)  # (m, D) a second one: the estimator's floor
    model = reverse_sde(score, SAMPLE_POINTS, mixture.ambient_dim, gen, t_max=tc.t_max, t_min=tc.t_min,
                        steps=SDE_STEPS, dtype=dtype, device=device)
    exact = reverse_sde(mixture.score, SAMPLE_POINTS, mixture.ambient_dim, gen, t_max=tc.t_max, t_min=tc.t_min,
                        steps=SDE_STEPS, dtype=torch.float64)
    ell = median_bandwidth(fresh)
    proj = getattr(net, "projection", None)
    row: dict[str, Any] = {
        "network": config.network.kind, "train_samples": config.samples, "ambient_dim": mixture.ambient_dim,
        "latent_dim": mixture.latent_dim, "param_count": parameter_count(net),
        "train_s": result.seconds, "train_loss": result.final_loss, "train_steps": result.steps,
        "score_err": errors.total, "score_err_on": errors.on, "score_err_off": errors.off,
        "score_ref": errors.reference,
        "subspace_err": None if proj is None else subspace_error(proj, mixture.basis),
        "sample_mmd": mmd2(model, fresh, ell) ** 0.5,
        "sample_mmd_exact": mmd2(exact, fresh, ell) ** 0.5,
        "sample_mmd_floor": mmd2(fresh2, fresh, ell) ** 0.5,
        "projection": projected(mixture, model, fresh),
    }
    return Evaluation(net=net, mixture=mixture, train=result, errors=errors, row=row)


def projected(mixture: LatentMixture, model: Tensor, data: Tensor, count: int = PROJECTED_POINTS) -> str:
    """JSON {"model": [[u, v], …], "data": […]}: the first ``count`` points of each sample in the
    coordinates of B's first two columns (one coordinate when d0 = 1), 3 decimals."""
    axes = mixture.basis[:, : min(2, mixture.latent_dim)].double()  # (D, ≤2)
    return json.dumps({name: [[round(v, 3) for v in p] for p in (pts[:count] @ axes).tolist()]
                       for name, pts in (("model", model), ("data", data))}, separators=(",", ":"))
