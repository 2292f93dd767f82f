"""The text ``ditbench compare`` prints: one line per size, one per exponent, and the decision."""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .stats import attainable, passes_needed
from .thresholds import Thresholds

# Setting columns shown in the table when they vary (kernel always).
SHOWN = ("experiment", "kernel", "op", "d", "bound_spec", "params", "dtype", "device")


def _label(row: pd.Series, frame: pd.DataFrame) -> str:
    parts = [str(row["kernel"])] + [f"{c}={row[c]}" for c in SHOWN
                                    if c != "kernel" and c in frame.columns and frame[c].nunique() > 1 and row[c]]
    return " ".join(parts)


def _interval(low: float, high: float, digits: int = 3) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "[—]"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _p(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.2g}" if value >= 1e-4 else "<1e-4"


def size_lines(sizes: pd.DataFrame) -> list[str]:
    rows = [("kernel", "n", "passes B/H", "blocks B/H", "median B", "median H", "ratio H/B [95% CI]", "p-adj",
             "verdict")]
    for _, r in sizes.iterrows():
        rows.append((_label(r, sizes), str(int(r["n"])), f"{int(r['base_passes'])}/{int(r['head_passes'])}",
                     f"{int(r['base_blocks'])}/{int(r['head_blocks'])}",
                     f"{r['base_median_s']:.3g} s", f"{r['head_median_s']:.3g} s",
                     f"{r['ratio']:.3f} {_interval(r['ratio_low'], r['ratio_high'])}", _p(r["p_adj"]),
                     str(r["verdict"])))
    return _columns(rows)


def exponent_lines(exponents: pd.DataFrame) -> list[str]:
    rows = [("kernel", "sizes", "k BASE [95% CI]", "k HEAD [95% CI]", "k H − k B [95% CI]", "verdict")]
    for _, r in exponents.iterrows():
        rows.append((_label(r, exponents), str(int(r["sizes"])),
                     f"{r['base_k']:.2f} {_interval(r['base_low'], r['base_high'], 2)}",
                     f"{r['head_k']:.2f} {_interval(r['head_low'], r['head_high'], 2)}",
                     f"{r['diff']:+.2f} {_interval(r['diff_low'], r['diff_high'], 2)}", str(r["verdict"])))
    return _columns(rows)


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def regressions(sizes: pd.DataFrame, exponents: pd.DataFrame) -> list[str]:
    """One line per regression that fails the comparison (empty: HEAD passes)."""
    lines = [f"{_label(r, sizes)} n={int(r['n'])}: {r['ratio']:.3f}× slower (p-adj {_p(r['p_adj'])})"
             for _, r in sizes[sizes["verdict"] == "slower"].iterrows()]
    lines += [f"{_label(r, exponents)}: exponent {r['base_k']:.2f} → {r['head_k']:.2f} "
              f"(difference {_interval(r['diff_low'], r['diff_high'], 2)})"
              for _, r in exponents[exponents["verdict"] == "steeper"].iterrows()]
    return lines


def render(sizes: pd.DataFrame, exponents: pd.DataFrame, thresholds: Thresholds) -> str:
    rule = (f"slower: Holm-adjusted pass permutation test p < {thresholds.alpha} and ratio > {thresholds.threshold}; "
            f"steeper: the 95% CI of k_HEAD − k_BASE lies above {thresholds.exponent_margin}")
    notes = [] if attainable(sizes, thresholds.alpha) else [
        f"WARNING: too few passes for any size to be significant after Holm over {len(sizes)} sizes "
        f"(need ≥ {passes_needed(max(1, len(sizes)), thresholds.alpha)} passes a side)"]
    bad = regressions(sizes, exponents)
    verdict = ("REGRESSION: " + "; ".join(bad)) if bad else "no significant regression"
    return "\n".join([*size_lines(sizes), "", *exponent_lines(exponents), "", rule, *notes, verdict])
