"""Fitted rates for E7/E8: each metric ∝ x^k with a 95% CI, per experiment, network and metric,
where x is the one setting the experiment varies (n = ``samples``, D = ``ambient_dim`` or
d0 = ``latent_dim``). Every fit is :func:`ditbench.fit.fit_power_law` (OLS with HC3 errors over
all points: one point per seed, seeds are independent draws; every size is kept, since these
are not timings with an overhead floor). Imports no torch itself: the report uses it.

The paper's checkable verdict (:func:`verdicts`): for the latent network the D-exponent of the
on-subspace score error has a CI containing 0, and differs from the ambient baseline's.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..fit import FULL_RANGE, InsufficientDataError, PowerLawFit, fit_power_law

VARIABLES = ("train_samples", "ambient_dim", "latent_dim")  # the x a stats experiment may vary
SYMBOLS = {"train_samples": "n", "ambient_dim": "D", "latent_dim": "d0"}
QUANTITIES = ("score_err", "score_err_on", "score_err_off", "subspace_err", "sample_mmd")
RATE_COLUMNS = ("experiment", "network", "variable", "quantity", "exponent", "ci_low", "ci_high", "r2",
                "points", "sizes", "x_min", "x_max", "fixed", "note")
ESTIMATOR = "ols-hc3"
RATES_FILE = "stats_rates.csv"  # written beside results.csv by `ditbench run`


def stats_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The ok rows of the stats family (empty frame when there are none)."""
    if "workload" not in results.columns:
        return results.iloc[0:0]
    return results[(results["workload"].astype(str) == "stats") & (results["status"].astype(str) == "ok")]


def varied_variable(rows: pd.DataFrame) -> str:
    """The one column of :data:`VARIABLES` that takes several values in ``rows`` (ValueError otherwise)."""
    varied = [v for v in VARIABLES if v in rows.columns and rows[v].nunique() > 1]
    if len(varied) != 1:
        raise ValueError(f"experiment {sorted(rows['experiment'].unique())} varies {varied or 'none'} of "
                         f"{list(VARIABLES)}; a rate needs exactly one")
    return varied[0]


def fit_series(x: np.ndarray, y: np.ndarray) -> PowerLawFit:
    """y ∝ x^k over every point (one per seed and size); InsufficientDataError below 3 sizes."""
    return fit_power_law(x, y, estimator=ESTIMATOR, region=FULL_RANGE)


def series(rows: pd.DataFrame, variable: str, quantity: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(x, y) of the positive finite values of ``quantity`` and how many rows were dropped."""
    x = pd.to_numeric(rows[variable], errors="coerce").to_numpy(float)
    y = pd.to_numeric(rows[quantity], errors="coerce").to_numpy(float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    return x[keep], y[keep], int((~keep).sum())


def rate_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, network, quantity) with columns :data:`RATE_COLUMNS`.

    ``variable`` names x (samples | ambient_dim | latent_dim) and ``quantity`` the fitted metric;
    ``fixed`` is JSON of the other two sizes; a series that cannot be fitted has empty numbers
    and the reason in ``note``.
    """
    rows = stats_rows(results)
    records: list[dict[str, object]] = []
    for experiment, part in rows.groupby("experiment", sort=True):
        variable = varied_variable(part)
        fixed = {v: sorted(int(u) for u in part[v].unique()) for v in VARIABLES if v != variable}
        for network, net_rows in part.groupby("network", sort=True):
            for quantity in QUANTITIES:
                x, y, dropped = series(net_rows, variable, quantity)
                if len(x) == 0:
                    continue  # e.g. subspace_err of the ambient network: not defined
                record: dict[str, object] = {"experiment": experiment, "network": network, "variable": variable,
                                             "quantity": quantity, "fixed": json.dumps(fixed),
                                             "points": len(x), "sizes": len(np.unique(x)),
                                             "x_min": float(x.min()), "x_max": float(x.max())}
                note = f"{dropped} non-positive value(s) left out" if dropped else ""
                try:
                    fit = fit_series(x, y)
                except InsufficientDataError as err:
                    record.update(note="; ".join(filter(None, [note, str(err)])))
                else:
                    record.update(exponent=fit.exponent, ci_low=fit.ci_low, ci_high=fit.ci_high, r2=fit.r2,
                                  note=note)
                records.append(record)
    return pd.DataFrame.from_records(records, columns=list(RATE_COLUMNS))


@dataclass(frozen=True)
class Verdict:
    """The paper's prediction for one experiment that varies D, checked on the fitted exponents."""

    experiment: str
    quantity: str
    latent: tuple[float, float, float]  # exponent, CI low, CI high
    ambient: tuple[float, float, float] | None
    latent_contains_zero: bool
    difference: tuple[float, float, float] | None  # k_latent − k_ambient and its approximate 95% CI
    differs: bool | None  # CI of the difference excludes 0

    def sentence(self) -> str:
        k, lo, hi = self.latent
        text = (f"{self.experiment}: latent {self.quantity} ∝ D^{k:.2f} [{lo:.2f}, {hi:.2f}] — CI "
                f"{'contains' if self.latent_contains_zero else 'excludes'} 0")
        if self.ambient is not None and self.difference is not None:
            ka, la, ha = self.ambient
            d, dl, dh = self.difference
            text += (f"; ambient ∝ D^{ka:.2f} [{la:.2f}, {ha:.2f}]; difference {d:.2f} [{dl:.2f}, {dh:.2f}] — "
                     f"{'differs' if self.differs else 'not distinguishable'}")
        return text


def verdicts(rates: pd.DataFrame, quantity: str = "score_err_on") -> list[Verdict]:
    """For every experiment fitted against ambient_dim: does the latent network's exponent CI contain
    0, and does it differ from the ambient one's? The difference's CI combines the two half-widths
    in quadrature (treats the fits as independent; the networks share seeds and data, a positive
    correlation that would narrow the true interval, so this errs toward "not distinguishable")."""
    out: list[Verdict] = []
    fitted = rates[(rates["variable"] == "ambient_dim") & (rates["quantity"] == quantity)].dropna(subset=["exponent"])
    for experiment, part in fitted.groupby("experiment", sort=True):
        by_net = {row["network"]: row for _, row in part.iterrows()}
        if "latent" not in by_net:
            continue
        lat = by_net["latent"]
        latent = (float(lat["exponent"]), float(lat["ci_low"]), float(lat["ci_high"]))
        amb, diff, differs = None, None, None
        if "ambient" in by_net:
            a = by_net["ambient"]
            amb = (float(a["exponent"]), float(a["ci_low"]), float(a["ci_high"]))
            d = latent[0] - amb[0]
            half = math.hypot((latent[2] - latent[1]) / 2, (amb[2] - amb[1]) / 2)
            diff, differs = (d, d - half, d + half), not (d - half <= 0 <= d + half)
        out.append(Verdict(str(experiment), quantity, latent, amb, latent[1] <= 0 <= latent[2], diff, differs))
    return out


def rate_lines(rates: pd.DataFrame) -> list[str]:
    """Plain-text summary: one line per fitted rate, then the verdicts."""
    if rates.empty:
        return []
    lines = ["fitted rates (metric ∝ x^k, 95% CI):"]
    for _, r in rates.iterrows():
        head = f"  {r['experiment']} {r['network']} {r['quantity']} vs {SYMBOLS[r['variable']]}"
        if pd.isna(r["exponent"]):
            lines.append(f"{head}: no fit ({r['note']})")
        else:
            lines.append(f"{head}: k = {r['exponent']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]")
    lines += ["  verdict " + v.sentence() for v in verdicts(rates)]
    return lines
