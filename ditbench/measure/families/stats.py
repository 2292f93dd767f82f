"""The ``stats`` family: score-estimation rates of latent score networks (E7/E8).

A ``stats`` sweep trains one score network per case (:func:`ditbench.stats.experiment.run_point`)
and records its statistical metrics (score error on/off the subspace, subspace error, sample
MMD; ``ditbench.schema.STATS_COLUMNS``). The timed call is one evaluation of the trained
network on a batch of 256 noised points (inference cost); training happens while the case is
prepared, and its wall time is the row's ``train_s``. ``kernel`` is the attention kernel inside
the network's DiT blocks. Sizes in the row: n = m = L tokens (= d0/p), d = dv = head dim.

    [[sweep]]
    experiment = "E7"
    workload = "stats"
    kernels = ["sdpa"]
    seeds = [0, 1, 2]
    setting = {network = ["latent", "ambient"], train_samples = [250, 1000, 4000], ambient_dim = 32, latent_dim = 4}

Optional setting keys (defaults in :data:`DEFAULTS`): hidden, depth, heads, token_dim, steps,
batch, lr, components, off_noise.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch

from ...stats.experiment import EVAL_POINTS, SAMPLE_POINTS, StatsConfig, run_point
from ...stats.mixture import MixtureSpec
from ...stats.networks import NetworkSpec, matched_width
from ...stats.train import TrainConfig
from ..cases import Case, Geometry
from ..family import Family
from ..spec import SweepSpec
from ..workloads import Prepared

TIMED_BATCH = 256
# Setting keys with defaults: network sizes (NetworkSpec), training (TrainConfig), data (MixtureSpec).
DEFAULTS: dict[str, Any] = {"hidden": 32, "depth": 2, "heads": 2, "token_dim": 1, "steps": 800, "batch": 256,
                            "lr": 2e-3, "components": 4, "off_noise": 0.0}
REQUIRED = ("network", "train_samples", "ambient_dim", "latent_dim")
_INTS = ("train_samples", "ambient_dim", "latent_dim", "hidden", "depth", "heads", "token_dim", "steps", "batch",
         "components")


def network_spec(s: dict[str, Any], kernel: str) -> NetworkSpec:
    return NetworkSpec(kind=s["network"], ambient_dim=s["ambient_dim"], latent_dim=s["latent_dim"],
                       hidden=s["hidden"], depth=s["depth"], heads=s["heads"], token_dim=s["token_dim"],
                       kernel=kernel)


def stats_geometries(spec: SweepSpec) -> Iterator[Geometry]:
    """network × D × d0 × optional keys × samples (innermost); n = m = L tokens, d = head dim."""
    grid = spec.setting_grid
    names = ["network", "ambient_dim", "latent_dim", *DEFAULTS, "train_samples"]
    axes = [grid.get(k, (DEFAULTS.get(k),)) for k in names]
    for combo in itertools.product(*axes):
        s = dict(zip(names, combo))
        for key in _INTS:
            if isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < 1:
                raise ValueError(f"{spec.experiment}: setting.{key}={s[key]!r} must be an integer ≥ 1")
        for key in ("lr", "off_noise"):
            if isinstance(s[key], bool) or not isinstance(s[key], (int, float)):
                raise ValueError(f"{spec.experiment}: setting.{key}={s[key]!r} must be a number")
        try:
            net = network_spec(s, "sdpa")
            config(s, seed=0, kernel="sdpa")  # every range check of the data and training, now
        except ValueError as err:
            raise ValueError(f"{spec.experiment}: setting {s}: {err}") from None
        width = net.hidden if net.kind == "latent" else matched_width(net)
        d = width // net.heads
        yield Geometry(n=net.tokens, m=net.tokens, d=d, dv=d, bound=None, bound_spec="", scale=d**-0.5,
                       scale_spec="1/sqrt(d)", setting=tuple(sorted(s.items())))


def config(s: dict[str, Any], *, seed: int, kernel: str) -> StatsConfig:
    return StatsConfig(
        network=network_spec(s, kernel), samples=s["train_samples"],
        mixture=MixtureSpec(latent_dim=s["latent_dim"], ambient_dim=s["ambient_dim"], components=s["components"],
                            off_noise=float(s["off_noise"]), seed=seed),
        train=TrainConfig(steps=s["steps"], batch=s["batch"], lr=float(s["lr"])), seed=seed)


def prepare(case: Case) -> Prepared:
    """Train the case's network (not timed), then time one evaluation on a fixed batch."""
    point = run_point(config(case.settings, seed=case.seed, kernel=case.kernel), device=case.device,
                      dtype=case.torch_dtype)
    gen = torch.Generator().manual_seed(case.seed + 5)
    x = torch.randn(TIMED_BATCH, point.mixture.ambient_dim, generator=gen).to(case.device, case.torch_dtype)
    t = (0.01 + 4.99 * torch.rand(TIMED_BATCH, generator=gen)).to(case.device, case.torch_dtype)  # (b,)
    net = point.net

    def call() -> torch.Tensor:
        with torch.no_grad():
            return net(x, t)  # (b, D)

    def score(out: torch.Tensor) -> dict[str, Any]:
        return {**point.row, "nonfinite": int((~torch.isfinite(out)).sum()), "ref_rows": None, "radius": None}

    return Prepared(call=call, score=score)


def stats_overhead_bytes(case: Case) -> float:
    """Float64 evaluation and sampling buffers (a few EVAL_POINTS × D arrays, three kernel matrices)."""
    big_d = case.settings["ambient_dim"]
    return 8.0 * (4 * EVAL_POINTS * big_d + 3 * SAMPLE_POINTS**2)



FAMILY = Family(
    name="stats", description="score network trained by DSM on a latent Gaussian mixture: statistical rates (E7/E8)",
    geometries=stats_geometries, prepare=prepare, cost=lambda case: None, overhead_bytes=stats_overhead_bytes,
    setting={**dict.fromkeys(REQUIRED, True), **dict.fromkeys(DEFAULTS, False)},
    # The network fixes the sizes: n = m = L = d0/p tokens, d = dv = its head dim, scale 1/√d.
    derived=("n", "m", "d", "dv", "bound", "scale"), kernel_op="forward", ops=("forward",),
)
