"""Where a run's exponent intervals come from: pass-to-pass spread, drift and page faults.

Usage: ``python tools/pass_spread.py RUN_DIR [RUN_DIR ...]`` (each holding results.csv and, after
``ditbench run``, fits.csv). For every timed kernel of E1/E4 it prints the headline interval
(half-width against issue 11's ±0.05), the per-pass sd of ln t within a point (what the passes
average), the lag-1 autocorrelation of the residuals in run order (machine drift shared by
consecutive points) and, where the rows have them, the median faults per timed call and the heap
policy (docs/measure.md, "Where the pass-to-pass spread comes from").
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["experiment", "kernel", "n", "d", "bound", "eps"]
HEADLINES = {"E1": ("sdpa", "exact", "polynomial"),
             "E4": ("exact_gradient", "lowrank_gradient", "polynomial_autograd_gradient")}


def spread(results: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, kernel): per-pass sd of ln t within a point, lag-1 autocorrelation of the
    residuals in run order, median faults per call."""
    ok = results[results["status"] == "ok"].copy()
    ok["order"] = np.arange(len(ok))
    ok["y"] = np.log(ok["median_s"])
    point = ok.groupby(KEY, dropna=False)["y"]
    ok["resid"] = ok["y"] - point.transform("mean")
    ok["passes"] = point.transform("size")
    multi = ok[ok["passes"] >= 2].sort_values("order")
    r = multi["resid"].to_numpy()
    lag1 = float(np.corrcoef(r[:-1], r[1:])[0, 1]) if len(r) > 2 else float("nan")
    rows = []
    for (experiment, kernel), g in multi.groupby(["experiment", "kernel"]):
        if experiment not in HEADLINES:
            continue
        per_pass = g.groupby(KEY, dropna=False)["y"].std(ddof=1)
        rows.append({"experiment": experiment, "kernel": kernel, "passes": int(g["passes"].max()),
                     "sd_ln_t_per_pass": float(np.sqrt(np.mean(per_pass**2))), "run_lag1_autocorr": lag1,
                     "faults_per_call": float(g["faults_per_call"].median()) if "faults_per_call" in g else np.nan,
                     "heap_policy": ",".join(sorted(set(g["heap_policy"].dropna()))) if "heap_policy" in g else ""})
    return pd.DataFrame(rows)


def headlines(fits: pd.DataFrame) -> pd.DataFrame:
    rows = fits[fits["experiment"].isin(list(HEADLINES))]
    rows = rows[[k in HEADLINES[e] for e, k in zip(rows["experiment"], rows["kernel"])]]
    out = rows[["experiment", "kernel", "exponent", "ci_low", "ci_high", "regime", "model"]].copy()
    out["half_width"] = (out["ci_high"] - out["ci_low"]) / 2
    out["within_0.05"] = out["half_width"] <= 0.05
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    pd.set_option("display.width", 200)
    for run in map(Path, argv):
        if not (run / "results.csv").exists():
            print(f"{run}: no results.csv", file=sys.stderr)
            return 1
        print(f"== {run}")
        print(spread(pd.read_csv(run / "results.csv")).round(3).to_string(index=False))
        if (run / "fits.csv").exists():
            print(headlines(pd.read_csv(run / "fits.csv")).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
