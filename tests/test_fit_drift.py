"""Calibration of the drift covariate (ditbench.fit.variance, ``drift_ref``) on laws built to fool it.

The machine's speed drifts over seconds (AR(1) in run order, shared by consecutive points), the
runner times a fixed reference around every point's pass, and the fit regresses ln t on the
centred ln(reference) within sizes. Designs are the default preset's: 7 half-octave sizes × 8
passes (E1 sdpa/exact, E4 exact_gradient) and 15 × 4 (E1 polynomial); every pass visits each
point once at a random place among ``RUN_POINTS`` points of the run (the other kernels' points
share the drift but are not fitted here). Noise per cell (ln t): the drift D_t (AR(1), φ per
point, marginal sd ``DRIFT_SD``), a per-size effect (sd 0.03, what no repetition removes) and
0.03 per pass. Scenarios:

* ``informative``: the reference sees the drift, r_t = D_t + η (η sd 0.03): γ = 1;
* ``useless``: the reference drifts on its own, independent of the kernel's drift: γ = 0;
* ``partial``: the reference sees only part of the kernel's drift, which also has an unshared
  AR(1) part (sd 0.08), and at another scale, r_t = D_t / 0.6 + η: γ = 0.6 < 1.

Acceptance (as tests/test_fit_calibration.py): the 95% interval covers the true exponent in
≥ 90% of 200 trials (sd of a correct interval's coverage ≈ 0.015), and with the informative
reference the interval is narrower than without it (what it is for); the useless one costs little.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from ditbench.fit import fit_power_law

TRIALS = 200
RUN_POINTS = 64  # points per pass of the whole run among which a group's points fall
PHI, DRIFT_SD = 0.8, 0.15  # AR(1) coefficient per point and marginal sd of the shared drift
SIZE_SD, PASS_SD, OWN_SD = 0.03, 0.03, 0.03
DESIGNS = {  # name → (sizes, passes, true exponent)
    "7x8 n^2": (2.0 ** np.arange(11, 14.01, 0.5), 8, 2.0),
    "15x4 n": (2.0 ** np.arange(12, 19.01, 0.5), 4, 1.0),
}
SCENARIOS = ("informative", "useless", "partial")


def ar1(rng: np.random.Generator, shape: tuple[int, int], sd: float) -> np.ndarray:
    """(T, L) AR(1) paths along the last axis with marginal sd ``sd``."""
    out = np.empty(shape)
    out[:, 0] = rng.normal(0.0, sd, shape[0])
    innovation = sd * np.sqrt(1 - PHI**2)
    for t in range(1, shape[1]):
        out[:, t] = PHI * out[:, t - 1] + rng.normal(0.0, innovation, shape[0])
    return out


def trials(design: str, scenario: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """n (p,), pass index (p,), timings (T, p) and reference seconds (T, p); one row per cell."""
    sizes, passes, k = DESIGNS[design]
    rng = np.random.default_rng(seed)
    length = RUN_POINTS * passes
    drift = ar1(rng, (TRIALS, length), DRIFT_SD)  # (T, L) shared by kernel and (some) reference
    n = np.tile(sizes, passes)  # (p,)
    pass_index = np.repeat(np.arange(passes), sizes.size)  # (p,)
    slot = np.concatenate([j * RUN_POINTS + rng.choice(RUN_POINTS, sizes.size, replace=False)
                           for j in range(passes)])  # (p,) run position of each cell
    at = drift[:, slot]  # (T, p)
    log_t = k * np.log(n) - 20.0 + at
    log_t = log_t + rng.normal(0.0, SIZE_SD, (TRIALS, sizes.size))[:, np.tile(np.arange(sizes.size), passes)]
    log_t = log_t + rng.normal(0.0, PASS_SD, log_t.shape)
    own = rng.normal(0.0, OWN_SD, log_t.shape)
    if scenario == "informative":
        log_ref = at + own
    elif scenario == "useless":
        log_ref = ar1(rng, (TRIALS, length), DRIFT_SD)[:, slot] + own
    elif scenario == "partial":
        log_t = log_t + ar1(rng, (TRIALS, length), 0.08)[:, slot]
        log_ref = at / 0.6 + own
    else:
        raise ValueError(scenario)
    return n, pass_index, np.exp(log_t), 0.008 * np.exp(log_ref)


@cache
def fits(design: str, scenario: str, with_reference: bool) -> tuple:
    seed = 1000 + 10 * list(DESIGNS).index(design) + SCENARIOS.index(scenario)
    n, passes, times, ref = trials(design, scenario, seed)
    return tuple(fit_power_law(n, t, passes=passes, drift_ref=r if with_reference else None)
                 for t, r in zip(times, ref))


def coverage(design: str, scenario: str) -> float:
    k = DESIGNS[design][2]
    return float(np.mean([f.ci_low <= k <= f.ci_high for f in fits(design, scenario, True)]))


def half_width_ratio(design: str, scenario: str) -> float:
    """Median over trials of (half-width with the reference) / (half-width without it)."""
    return float(np.median([(a.ci_high - a.ci_low) / (b.ci_high - b.ci_low)
                            for a, b in zip(fits(design, scenario, True), fits(design, scenario, False))]))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_coverage_with_a_drift_reference(scenario):
    assert coverage("7x8 n^2", scenario) >= 0.90


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_coverage_with_a_drift_reference_on_the_long_grid(scenario):
    assert coverage("15x4 n", scenario) >= 0.90


def test_gamma_is_estimated():
    # γ̂ is the within-size regression coefficient: ≈ 1, ≈ 0 and ≈ 0.6 by construction.
    for scenario, gamma in (("informative", 1.0), ("useless", 0.0), ("partial", 0.6)):
        found = np.median([f.drift_gamma for f in fits("7x8 n^2", scenario, True)])
        assert abs(found - gamma) < 0.1, (scenario, found)


def test_an_informative_reference_narrows_the_interval_and_a_useless_one_costs_little():
    assert half_width_ratio("7x8 n^2", "informative") <= 0.7
    assert half_width_ratio("7x8 n^2", "partial") <= 0.95
    assert half_width_ratio("7x8 n^2", "useless") <= 1.1


def test_no_adjustment_without_passes_or_with_missing_values():
    n, passes, times, ref = trials("7x8 n^2", "informative", seed=5)
    plain = fit_power_law(n, times[0], passes=passes)
    assert fit_power_law(n, times[0], passes=passes, drift_ref=np.where(np.arange(n.size) == 3, np.nan, ref[0])
                         ).exponent == plain.exponent
    assert fit_power_law(n, times[0], drift_ref=ref[0]).drift_gamma is None  # one cell per size: nothing to learn
    with pytest.raises(ValueError, match="drift_ref must be > 0"):
        fit_power_law(n, times[0], passes=passes, drift_ref=-ref[0])
    with pytest.raises(ValueError, match="pair up"):
        fit_power_law(n, times[0], passes=passes, drift_ref=ref[0][:-1])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_labels_are_never_confidently_wrong_with_a_reference(scenario):
    # n² on 7 sizes: quadratic or cautious; never almost-linear, intermediate or not-asymptotic.
    found = {f.regime for f in fits("7x8 n^2", scenario, True)}
    assert found <= {"quadratic", "inconclusive"}, found


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_labels_on_the_long_grid_are_never_confidently_wrong(scenario):
    found = {f.regime for f in fits("15x4 n", scenario, True)}
    assert found <= {"almost-linear", "inconclusive"}, found
