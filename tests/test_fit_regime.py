"""Regime labels: thresholds, precedence, validation."""
from __future__ import annotations

import math

import pytest

from ditbench.fit import RegimeThresholds, classify


@pytest.mark.parametrize(
    "low, high, label",
    [
        (0.95, 1.05, "almost-linear"),
        (1.00, 1.25, "almost-linear"),  # upper end exactly at the threshold counts
        (1.10, 1.30, "intermediate"),
        (1.75, 2.05, "quadratic"),  # lower end exactly at the threshold counts
        (1.30, 1.70, "intermediate"),
        (0.70, 1.24, "almost-linear"),  # width 0.54 > 0.5 … see the next case
    ][:-1] + [
        (0.70, 1.21, "inconclusive"),  # width 0.51: wide beats almost-linear (precedence)
        (1.60, 2.20, "inconclusive"),  # width 0.6 beats quadratic
        (1.00, 1.50, "intermediate"),  # width exactly 0.5 is not "wider than"
    ],
)
def test_default_labels_and_precedence(low, high, label):
    assert classify(low, high) == label


def test_thresholds_are_configurable():
    strict = RegimeThresholds(almost_linear_upper=1.1, quadratic_lower=1.9, max_ci_width=0.2)
    assert classify(1.0, 1.15) == "almost-linear"
    assert classify(1.0, 1.15, strict) == "intermediate"
    assert classify(1.0, 1.3, strict) == "inconclusive"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_ci_width": 0.0}, "max_ci_width"),
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
