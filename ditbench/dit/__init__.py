"""Latent DiTs (DESIGN §3.3): the DiT model zoo, linear-latent data, and the almost-linear criteria."""
from __future__ import annotations

from .configs import DIT_CONFIGS, DiTConfig, get_config
from .model import DiT, build_dit, perturb_zero_init
from .latent import DiTBatch, LinearLatentSpace, latent_batch
from .capture import AttentionCall, capture_dit, capture_sdpa
from .criteria import HeadCriteria, VerdictRule, check_dit, check_module, per_layer
from .checkpoint import CheckpointError, load_checkpoint
from .workload import DiTWorkload, WorkloadSpec, build_workload

__all__ = [
    "DIT_CONFIGS", "DiTConfig", "get_config", "DiT", "build_dit", "perturb_zero_init",
    "DiTBatch", "LinearLatentSpace", "latent_batch", "AttentionCall", "capture_dit", "capture_sdpa",
    "HeadCriteria", "VerdictRule", "check_dit", "check_module", "per_layer",
    "CheckpointError", "load_checkpoint", "DiTWorkload", "WorkloadSpec", "build_workload",
]
