"""Choosing the asymptotic region: which sizes to fit when small n is dominated by overhead.

At small n a kernel's time is often a constant floor (Python dispatch, allocation, thread
start-up) plus the part that scales. On a log–log plot the floor flattens the left end, and a
straight-line fit through every size would report an exponent that is too small — exactly the
wrong way for a tool that asks "is this almost-linear?".

Rule (applied to the per-size medians, sizes in increasing order):

1. Reference slope ``s_up``: the least-squares log–log slope over the upper half of the sizes
   (at least 3 of them). The top of the range is where the asymptotic law shows.
2. Local slope between neighbouring sizes i, i+1: Δ ln t / Δ ln n of their medians.
3. Drop the smallest remaining size while the local slope starting at it is below
   ``fraction · s_up`` and more than ``min_sizes`` sizes remain.

Why ``fraction = 0.9``: a floor c₀ under a law b·n^k gives a local slope of k·(1 − c₀/t), so
the rule keeps sizes where the floor is under roughly a tenth of the time. With 10% timing noise
and 5 repeats a local slope over a doubling of n has a standard deviation of about 0.11, so a
true slope of 1 falls below 0.9 about 19% of the time; dropping a good size then costs interval
width, not bias (the calibration tests check coverage with the rule active). 0.8 dropped fewer
good sizes but left about half again as much floor bias in the calibration runs.

Limit: sizes where the floor is a few per cent of the time are kept, and their slope deficit is
below what neighbouring-size slopes can resolve; a floor that dominates the smallest sizes still
biases the exponent low by a few hundredths (measured: about −0.03 for a linear law whose
floor equals its time at the smallest of 10 doubling sizes). The exponent stays above 0.9 there,
but its interval need not cover 1. A floor-aware model t = c₀ + b·n^k would remove this bias.
A reference slope ≤ 0 (timings flat or falling) drops nothing: there is no growth to hide.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RegionRule:
    """Parameters of the asymptotic-region rule (see module doc)."""

    fraction: float = 0.9  # drop while local slope < fraction · upper-half slope
    min_sizes: int = 4  # never keep fewer distinct sizes than this (if there are that many)

    def __post_init__(self) -> None:
        if not (0.0 <= self.fraction <= 1.0):
            raise ValueError(f"RegionRule.fraction={self.fraction} must lie in [0, 1]")
        if isinstance(self.min_sizes, bool) or int(self.min_sizes) != self.min_sizes or self.min_sizes < 2:
            raise ValueError(f"RegionRule.min_sizes={self.min_sizes} must be an integer ≥ 2")


# fraction 0 never drops anything: the whole range is fitted.
FULL_RANGE = RegionRule(fraction=0.0)


@dataclass(frozen=True)
class LocalSlope:
    """Log–log slope between two neighbouring sizes' median times."""

    n_low: float
    n_high: float
    slope: float


def local_slopes(sizes: np.ndarray, log_medians: np.ndarray) -> tuple[LocalSlope, ...]:
    """Slopes Δ ln t / Δ ln n between neighbours. ``sizes (k,)`` increasing, ``log_medians (k,)``."""
    log_n = np.log(sizes)  # (k,)
    slopes = np.diff(log_medians) / np.diff(log_n)  # (k-1,)
    return tuple(LocalSlope(float(a), float(b), float(s)) for a, b, s in zip(sizes[:-1], sizes[1:], slopes))


def upper_slope(sizes: np.ndarray, log_medians: np.ndarray) -> float:
    """Least-squares log–log slope over the upper half of the sizes (at least 3, or all if fewer)."""
    k = len(sizes)
    take = min(k, max(3, math.ceil(k / 2)))
    slope, _ = np.polyfit(np.log(sizes[-take:]), log_medians[-take:], 1)
    return float(slope)


def first_asymptotic_index(sizes: np.ndarray, log_medians: np.ndarray, rule: RegionRule) -> int:
    """Index of the smallest size kept by ``rule``. ``sizes (k,)`` strictly increasing."""
    k = len(sizes)
    if k <= rule.min_sizes or rule.fraction == 0.0:
        return 0
    reference = upper_slope(sizes, log_medians)
    if reference <= 0.0:
        return 0
    threshold = rule.fraction * reference
    slopes = local_slopes(sizes, log_medians)
    start = 0
    while k - start > rule.min_sizes and slopes[start].slope < threshold:
        start += 1
    return start
