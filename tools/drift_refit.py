"""What the drift reference buys on a measured run: every E1/E4 headline fit with and without it.

Usage: ``python tools/drift_refit.py RUN_DIR [RUN_DIR ...]`` (each holding a results.csv written
with the ``drift_ref_s`` column, ditbench.measure.drift). For every E1/E4 kernel it prints the
exponent and 95% half-width fitted with the reference (the default) and from the same rows
without it, their ratio, γ̂, the correlation of the within-point residuals of ln t with those of
ln(reference), and the pooled within-point sd of ln t before and after the regression, and after
a pass fixed effect instead (docs/measure.md, "The drift reference", "Pass blocks"). Same rows,
same fit: the ratio is an interleaved comparison by construction.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ditbench.fit import fit_table
from ditbench.schema import read_results


def refit(run_dir: str) -> pd.DataFrame:
    frame = read_results(f"{run_dir}/results.csv")
    frame = frame[frame["experiment"].isin(["E1", "E4"]) & (frame["status"] == "ok")
                  & frame["drift_ref_s"].notna()]
    with_ref = fit_table(frame).set_index(["experiment", "kernel"])
    without = fit_table(frame.drop(columns=["drift_ref_s"])).set_index(["experiment", "kernel"])
    rows = []
    for (experiment, kernel), fit in with_ref.iterrows():
        plain = without.loc[(experiment, kernel)]
        g = frame[(frame["kernel"] == kernel) & (frame["experiment"] == experiment)]
        y, r = np.log(g["median_s"].astype(float)), np.log(g["drift_ref_s"].astype(float))
        yc = y - y.groupby(g["n"]).transform("mean")
        rc = r - r.groupby(g["n"]).transform("mean")
        gamma = float(fit["drift_gamma"]) if pd.notna(fit["drift_gamma"]) else 0.0
        dof = len(yc) - g["n"].nunique()
        rows.append({
            "run": run_dir, "experiment": experiment, "kernel": kernel,
            "k": float(fit["exponent"]), "half_width": float(fit["ci_high"] - fit["ci_low"]) / 2,
            "k_without": float(plain["exponent"]), "half_width_without": float(plain["ci_high"] - plain["ci_low"]) / 2,
            "ratio": float((fit["ci_high"] - fit["ci_low"]) / (plain["ci_high"] - plain["ci_low"])),
            "gamma": gamma, "corr": float(np.corrcoef(yc, rc)[0, 1]),
            "sd_within": float(np.sqrt(np.sum(yc**2) / dof)),
            "sd_within_adjusted": float(np.sqrt(np.sum((yc - gamma * rc) ** 2) / max(dof - 1, 1))),
            # … and after a pass fixed effect instead (what a group's sizes of one pass share:
            # with order = "blocks" that part cancels from the slope)
            "sd_within_pass_effect": float(np.sqrt(np.sum((yc - yc.groupby(g["pass_index"]).transform("mean")) ** 2)
                                                   / max(dof - g["pass_index"].nunique() + 1, 1))),
            "ref_ms": float(np.exp(r.mean()) * 1e3),
        })
    return pd.DataFrame(rows)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    pd.set_option("display.width", 220)
    try:
        table = pd.concat([refit(d) for d in argv], ignore_index=True)
    except (OSError, ValueError, KeyError) as err:
        print(f"drift_refit: {err}", file=sys.stderr)
        return 2
    print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
