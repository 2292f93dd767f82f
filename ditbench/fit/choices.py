"""The fit's named choices, importable without statsmodels, scipy or pandas (``ditbench fit
--help`` offers them): :func:`ditbench.fit.power_law.fit_power_law` checks its arguments against
these, and the CLI's ``--estimator`` / ``--model`` choices are read from them."""
from __future__ import annotations

# wls-median: per-size medians, two-level weights (the default); ols-hc3: every repeat, HC3 errors.
ESTIMATORS: tuple[str, ...] = ("wls-median", "ols-hc3")
# auto: AICc choice of power, floor and step; or one law forced.
MODELS: tuple[str, ...] = ("auto", "power", "floor", "step")
