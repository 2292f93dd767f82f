"""Plain-text run summary: status counts, failures, fitted exponents, speedups, worst errors.

Pure functions of the results (and fits) tables, so the CLI's output is testable.
"""
from __future__ import annotations

import pandas as pd

from ..schema import FIT_COLUMNS, STATUSES
ALWAYS_SHOWN = ("experiment", "kernel")
# Columns that, with the kernel, define a comparable setting for speedups.
SETTING_COLUMNS = ("experiment", "op", "d", "dv", "bound_spec", "scale_spec", "dtype", "device", "seed")
MAX_FAILURES_SHOWN = 10


def status_lines(results: pd.DataFrame) -> list[str]:
    counts = results["status"].value_counts()
    lines = [f"{len(results)} points: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)]
    failed = results[results["status"] == "failed"]
    for _, row in failed.head(MAX_FAILURES_SHOWN).iterrows():
        lines.append(f"  FAILED {row['experiment']} {row['kernel']} n={row['n']}: {row['reason']}")
    if len(failed) > MAX_FAILURES_SHOWN:
        lines.append(f"  … and {len(failed) - MAX_FAILURES_SHOWN} more failed points (see results.csv)")
    return lines


def fit_lines(fits: pd.DataFrame | None) -> list[str]:
    """One line per fitted group: ``group: exponent 1.02 [0.98, 1.06], regime …``."""
    if fits is None or fits.empty:
        return []
    groups = [c for c in fits.columns if c not in FIT_COLUMNS]
    # Show the keys that tell groups apart (constant ones would only add noise to every line).
    shown = [c for c in groups if c in ALWAYS_SHOWN or fits[c].astype(str).nunique() > 1]
    lines = ["fitted exponents (time ∝ n^k, 95% CI):"]
    for _, row in fits.iterrows():
        key = " ".join(f"{c}={row[c]}" for c in shown)
        if pd.isna(row["exponent"]):
            lines.append(f"  {key}: no fit ({row.get('note', row.get('regime', '?'))})")
            continue
        lines.append(f"  {key}: k = {row['exponent']:.3g} [{row['ci_low']:.3g}, {row['ci_high']:.3g}], "
                     f"regime {row.get('regime', '?')}" + (f" ({row['regime_reason']})" if isinstance(
                         row.get("regime_reason"), str) and row["regime_reason"] else ""))
    return lines


def speedups(results: pd.DataFrame, baseline: str = "exact") -> pd.DataFrame:
    """Per setting and kernel: baseline median / kernel median at the largest n where both ran ok.

    Returns columns SETTING_COLUMNS (those present) + kernel, n, speedup; empty if no baseline rows.
    """
    ok = results[results["status"] == "ok"]
    keys = [c for c in SETTING_COLUMNS if c in ok.columns]
    base = ok[ok["kernel"] == baseline][keys + ["n", "median_s"]].rename(columns={"median_s": "base_s"})
    if base.empty:
        return pd.DataFrame(columns=keys + ["kernel", "n", "speedup"])
    both = ok[ok["kernel"] != baseline].merge(base, on=keys + ["n"], how="inner")
    if both.empty:
        return pd.DataFrame(columns=keys + ["kernel", "n", "speedup"])
    largest = both.loc[both.groupby(keys + ["kernel"], dropna=False)["n"].idxmax()]
    out = largest[keys + ["kernel", "n"]].copy()
    out["speedup"] = largest["base_s"] / largest["median_s"]
    return out.reset_index(drop=True)


def speedup_lines(results: pd.DataFrame, baseline: str = "exact") -> list[str]:
    table = speedups(results, baseline)
    if table.empty:
        return []
    lines = [f"speedup over {baseline} at the largest n where both ran:"]
    for _, row in table.iterrows():
        lines.append(f"  {row['experiment']} {row['kernel']} (d={row['d']}, B={row['bound_spec']}) "
                     f"n={row['n']}: {row['speedup']:.3g}×")
    return lines


def worst_error_lines(results: pd.DataFrame) -> list[str]:
    """Per experiment and kernel: the largest err_max over ok points, with its uniform baseline."""
    ok = results[(results["status"] == "ok") & results["err_max"].notna()]  # stats rows have no err_max
    if ok.empty:
        return []
    lines = ["worst error per kernel (err_max; err_vs_uniform < 1 means better than mean-of-V):"]
    for (experiment, kernel), group in ok.groupby(["experiment", "kernel"], sort=True):
        row = group.loc[group["err_max"].idxmax()]
        lines.append(f"  {experiment} {kernel}: err_max {row['err_max']:.3g} at n={row['n']} "
                     f"(uniform {row['err_uniform']:.3g}, ratio {row['err_vs_uniform']:.3g})")
    return lines


def summarize(results: pd.DataFrame, fits: pd.DataFrame | None = None, baseline: str = "exact") -> str:
    """The text ``ditbench run`` prints after a sweep."""
    parts = [status_lines(results), fit_lines(fits), speedup_lines(results, baseline), worst_error_lines(results)]
    return "\n".join(line for part in parts for line in part)
