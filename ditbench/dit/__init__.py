"""Latent DiTs (DESIGN §3.3): the DiT model zoo, linear-latent data, and the almost-linear criteria.

The names below are imported on first use, so ``import ditbench.dit.configs`` (the CLI's model
choices) loads no torch."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .capture import AttentionCall, capture_dit, capture_sdpa
    from .checkpoint import CheckpointError, load_checkpoint
    from .configs import DIT_CONFIGS, DiTConfig, get_config
    from .criteria import HeadCriteria, VerdictRule, check_dit, check_module, per_layer
    from .latent import DiTBatch, LinearLatentSpace, latent_batch
    from .model import DiT, build_dit, perturb_zero_init
    from .workload import DiTWorkload, WorkloadSpec, build_workload

__getattr__, __dir__ = lazy_names(__name__, {
    "configs": ("DIT_CONFIGS", "DiTConfig", "get_config"),
    "model": ("DiT", "build_dit", "perturb_zero_init"),
    "latent": ("DiTBatch", "LinearLatentSpace", "latent_batch"),
    "capture": ("AttentionCall", "capture_dit", "capture_sdpa"),
    "criteria": ("HeadCriteria", "VerdictRule", "check_dit", "check_module", "per_layer"),
    "checkpoint": ("CheckpointError", "load_checkpoint"),
    "workload": ("DiTWorkload", "WorkloadSpec", "build_workload"),
})
__all__ = [
    "AttentionCall", "CheckpointError", "DIT_CONFIGS", "DiT", "DiTBatch", "DiTConfig", "DiTWorkload",
    "HeadCriteria", "LinearLatentSpace", "VerdictRule", "WorkloadSpec", "build_dit", "build_workload",
    "capture_dit", "capture_sdpa", "check_dit", "check_module", "get_config", "latent_batch", "load_checkpoint",
    "per_layer", "perturb_zero_init",
]
