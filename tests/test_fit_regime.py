"""Regime labels: the rule of DESIGN "Verdicts", its precedence, reasons and validation."""
from __future__ import annotations

import math

import pytest

from ditbench.fit import RegimeThresholds, classify, verdict


@pytest.mark.parametrize(
    "low, high, law, label",
    [
        (0.95, 1.05, None, "almost-linear"),
        (0.90, 1.25, None, "almost-linear"),  # both ends exactly at the thresholds count
        (-0.02, 0.02, None, "not-asymptotic"),  # the smoke run's SDPA: overhead only
        (0.40, 0.89, "n", "not-asymptotic"),  # below 0.9 wins over any model comparison
        (0.70, 1.24, None, "inconclusive"),  # ends below 1.25 but reaches below 0.9: never almost-linear
        (1.10, 1.30, None, "inconclusive"),  # straddles 1.25
        (0.85, 1.34, None, "inconclusive"),  # the first wave's constant-B E2 (1.10 [0.85, 1.34])
        (1.30, 1.70, None, "intermediate"),
        (1.25, 1.50, None, "inconclusive"),  # touches 1.25: not strictly inside
        (1.36, 1.50, "n log^4 n", "almost-linear"),  # polylog won the comparison: rule 2 beats rule 4
        (1.36, 1.50, "power", "intermediate"),
        (1.36, 1.80, "n log^4 n", "inconclusive"),  # AIC route needs hi < 1.75
        (0.85, 1.20, "n log n", "inconclusive"),  # AIC route needs lo ≥ 0.9
        (1.75, 2.05, None, "quadratic"),  # lower end exactly at the threshold counts
        (2.04, 2.55, None, "quadratic"),  # the first wave's exact_gradient: no upper cap
        (1.60, 2.20, None, "inconclusive"),
    ],
)
def test_labels_and_precedence(low, high, law, label):
    assert verdict(low, high, law).label == label
    assert classify(low, high, best_law=law) == label


def test_every_label_has_a_one_line_reason():
    assert "measure larger n beyond n = 1024" in verdict(0.0, 0.1, n_max=1024).reason
    assert "super-quadratic" in verdict(2.3, 2.6).reason and verdict(2.3, 2.6).label == "quadratic"
    assert "AICc prefers n log^4 n" in verdict(1.4, 1.5, "n log^4 n").reason
    assert "1.25" in verdict(1.1, 1.3).reason
    for lo, hi in ((0.0, 0.1), (1.0, 1.1), (1.3, 1.4), (1.8, 2.0), (1.0, 2.0)):
        reason = verdict(lo, hi).reason
        assert reason and "\n" not in reason


def test_thresholds_are_configurable():
    strict = RegimeThresholds(almost_linear_upper=1.1, quadratic_lower=1.9)
    assert classify(1.0, 1.15) == "almost-linear"
    assert classify(1.0, 1.15, strict) == "inconclusive"
    assert classify(1.15, 1.3, strict) == "intermediate"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"almost_linear_lower": 1.3}, "must be below"),
        ({"almost_linear_upper": 2.0, "quadratic_lower": 1.5}, "must be below"),
        ({"quadratic_lower": math.inf}, "finite"),
    ],
)
def test_bad_thresholds(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegimeThresholds(**kwargs)


def test_bad_interval():
    with pytest.raises(ValueError, match="ci_low"):
        classify(1.2, 1.1)
    with pytest.raises(ValueError, match="finite"):
        classify(math.nan, 1.0)
