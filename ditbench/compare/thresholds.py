"""The thresholds of ``ditbench compare``: when a difference counts. Kept apart from
:mod:`.stats` so the CLI's defaults (and ``ditbench compare --help``) load no scipy or pandas."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """When a difference counts (docs/benchmarks.md gives the A/A measurements behind the defaults)."""

    threshold: float = 1.10  # a size is slower when ratio > threshold (and significant)
    alpha: float = 0.05  # family-wise error rate of the Holm-corrected size tests
    exponent_margin: float = 0.10  # steeper when the whole CI of k_HEAD − k_BASE lies above this

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and self.threshold >= 1.0):
            raise ValueError(f"threshold={self.threshold} must be a ratio ≥ 1 (e.g. 1.1 for 10 %)")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha={self.alpha} must lie in (0, 1)")
        if not (math.isfinite(self.exponent_margin) and self.exponent_margin >= 0.0):
            raise ValueError(f"exponent_margin={self.exponent_margin} must be ≥ 0")
