"""Statistics of ``ditbench compare``: per size a rank test and a ratio with its interval, per
kernel the exponent difference with its interval.

Input: two tidy tables (BASE, HEAD) as :func:`ditbench.schema.read_results` returns them. The unit
of the size test is the *timed block* (seconds per call of one block): the ``samples`` column (a
JSON list per row, one entry per block) when a row has it, else the row's ``median_s`` (one value
per row, i.e. per pass). Blocks of one pass are taken back to back and share that pass's load, so
they are not independent draws; interleaving passes BASE, HEAD, BASE, … spreads the load over both
sides, and the ``threshold`` (a ratio measured on A/A comparisons, docs/benchmarks.md) absorbs what
correlation is left: a size is "slower" only when the test is significant after Holm's correction
*and* the estimated ratio exceeds the threshold.

* size test: two-sided Mann–Whitney U of HEAD's blocks against BASE's (scipy), Holm-corrected
  over every compared (kernel, size) (statsmodels ``multipletests``).
* ratio HEAD/BASE: the Hodges–Lehmann shift of log seconds (median of all pairwise differences),
  with its distribution-free (Moses) interval from the Mann–Whitney null distribution — the
  interval that inverts the same test.
* exponent: :func:`ditbench.fit.fit_power_law` (``model="power"`` on both sides, so the two
  exponents are the same quantity) on each side's blocks with their pass indices; the difference
  k_HEAD − k_BASE with a Welch–Satterthwaite t interval (the sides are measured independently).
  "steeper" when the whole interval lies above ``exponent_margin``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .thresholds import Thresholds

# The columns that make two rows "the same point" on both sides (besides n). Left out on purpose:
# degree, rank and impl (what ran: a change of HEAD may legitimately change them), machine and
# host (a revision comparison runs on one machine; result directories may come from two).
SETTING_COLUMNS: tuple[str, ...] = ("experiment", "kernel", "op", "d", "dv", "bound_spec", "scale_spec", "params",
                                    "dtype", "device", "threads", "workload", "setting")
CONFIDENCE = 0.95
MIN_BLOCKS = 3  # fewer blocks on a side: no test (Mann–Whitney with 2 vs 2 cannot reach p < 0.3)
VERDICTS = ("slower", "faster", "same", "too few")
EXPONENT_VERDICTS = ("steeper", "flatter", "same", "no fit")


def settings(base: pd.DataFrame, head: pd.DataFrame) -> list[str]:
    """The setting columns present in both tables (the join keys besides n)."""
    return [c for c in SETTING_COLUMNS if c in base.columns and c in head.columns]


def blocks(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per timed block of every ok row: ``keys``, ``n``, ``pass_index``, ``seconds``.

    ``samples`` (JSON list) when a row has it, else its ``median_s``. A row without a pass index
    gets its row number among the rows of its point (so repeated rows count as passes)."""
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    records: list[dict] = []
    seen: dict[tuple, int] = {}
    for row in ok.to_dict("records"):
        key = tuple(_text(row.get(c)) for c in keys)
        n = int(row["n"])
        text = row.get("samples")
        values = json.loads(text) if isinstance(text, str) and text.strip() else [row["median_s"]]
        label = row.get("pass_index")
        if label is None or pd.isna(label):
            label = seen.get(key + (n,), 0)
        seen[key + (n,)] = int(label) + 1
        records.extend({**dict(zip(keys, key)), "n": n, "pass_index": int(label), "seconds": float(v)}
                       for v in values)
    out = pd.DataFrame.from_records(records, columns=[*keys, "n", "pass_index", "seconds"])
    bad = ~(np.isfinite(out["seconds"]) & (out["seconds"] > 0))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} timed block(s) are not finite positive seconds "
                         f"(first: {out.loc[bad, 'seconds'].iloc[0]!r})")
    return out


def _text(value: object) -> str:
    """A setting value as a join key (missing → ``""``; 8.0 and 8 the same)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def hodges_lehmann(base: np.ndarray, head: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(estimate, low, high) of the shift head − base: the median of all pairwise differences and
    the Moses interval (order statistics of those differences at the Mann–Whitney critical value,
    normal approximation with continuity correction). Low/high are ∓inf when the samples are too
    small for any interval at this confidence."""
    diffs = np.sort(np.subtract.outer(np.asarray(head, float), np.asarray(base, float)).ravel())  # (m·n,)
    m, n = len(head), len(base)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    k = int(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12) - 0.5))
    estimate = float(np.median(diffs))
    if k < 0:
        return estimate, -math.inf, math.inf
    return estimate, float(diffs[k]), float(diffs[len(diffs) - 1 - k])


def compare_sizes(base: pd.DataFrame, head: pd.DataFrame, thresholds: Thresholds = Thresholds()) -> pd.DataFrame:
    """One row per (setting, n) measured on both sides: the setting columns, ``n``,
    ``base_blocks``, ``head_blocks``, ``base_median_s``, ``head_median_s``, ``ratio``,
    ``ratio_low``, ``ratio_high`` (HEAD/BASE, 95 % interval), ``p_value``, ``p_adj`` (Holm) and
    ``verdict`` (one of :data:`VERDICTS`)."""
    from statsmodels.stats.multitest import multipletests

    keys = settings(base, head)
    b, h = blocks(base, keys), blocks(head, keys)
    records = []
    for key, hb in h.groupby([*keys, "n"], sort=True):
        bb = b[(b[[*keys, "n"]] == pd.Series(dict(zip([*keys, "n"], key)))).all(axis=1)]
        if bb.empty:
            continue
        lb, lh = np.log(bb["seconds"].to_numpy()), np.log(hb["seconds"].to_numpy())
        record = {**dict(zip([*keys, "n"], key)), "base_blocks": len(lb), "head_blocks": len(lh),
                  "base_median_s": float(np.exp(np.median(lb))), "head_median_s": float(np.exp(np.median(lh)))}
        if min(len(lb), len(lh)) < MIN_BLOCKS:
            record.update(ratio=record["head_median_s"] / record["base_median_s"], ratio_low=math.nan,
                          ratio_high=math.nan, p_value=math.nan)
        else:
            shift, low, high = hodges_lehmann(lb, lh)
            p = float(stats.mannwhitneyu(lh, lb, alternative="two-sided").pvalue)
            record.update(ratio=math.exp(shift), ratio_low=math.exp(low), ratio_high=math.exp(high), p_value=p)
        records.append(record)
    columns = [*keys, "n", "base_blocks", "head_blocks", "base_median_s", "head_median_s", "ratio", "ratio_low",
               "ratio_high", "p_value", "p_adj", "verdict"]
    table = pd.DataFrame.from_records(records, columns=[c for c in columns if c not in ("p_adj", "verdict")])
    tested = table["p_value"].notna()
    table["p_adj"] = math.nan
    if tested.any():
        table.loc[tested, "p_adj"] = multipletests(table.loc[tested, "p_value"], alpha=thresholds.alpha,
                                                   method="holm")[1]
    table["verdict"] = [_size_verdict(r, thresholds) for r in table.itertuples(index=False)]
    return table[columns]


def _size_verdict(row: Any, t: Thresholds) -> str:
    p_adj, ratio = row.p_adj, row.ratio
    if not math.isfinite(p_adj):
        return "too few"
    if p_adj < t.alpha and ratio > t.threshold:
        return "slower"
    if p_adj < t.alpha and ratio < 1.0 / t.threshold:
        return "faster"
    return "same"


##################################################################################################
# Exponents
##################################################################################################
@dataclass(frozen=True)
class ExponentFit:
    exponent: float
    se: float  # standard error of k
    df: int  # residual degrees of freedom of its interval
    ci_low: float
    ci_high: float


def _fit(part: pd.DataFrame) -> ExponentFit | None:
    from ..fit import InsufficientDataError, fit_power_law

    try:
        fit = fit_power_law(part["n"].to_numpy(), part["seconds"].to_numpy(), passes=part["pass_index"].to_numpy(),
                            model="power")
    except InsufficientDataError:
        return None
    se = math.sqrt(max(float(fit.line_cov()[1, 1]), 0.0))
    return ExponentFit(fit.exponent, se, fit.df_resid, fit.ci_low, fit.ci_high)


def compare_exponents(base: pd.DataFrame, head: pd.DataFrame, thresholds: Thresholds = Thresholds()) -> pd.DataFrame:
    """One row per setting measured on both sides: the setting columns, ``sizes`` (common sizes
    fitted), ``base_k``, ``base_low``, ``base_high``, ``head_k``, ``head_low``, ``head_high``,
    ``diff``, ``diff_low``, ``diff_high`` (k_HEAD − k_BASE, 95 % interval) and ``verdict`` (one of
    :data:`EXPONENT_VERDICTS`). Both sides are fitted on the sizes they share."""
    keys = settings(base, head)
    b, h = blocks(base, keys), blocks(head, keys)
    records = []
    for key, hp in h.groupby(keys, sort=True) if keys else [((), h)]:
        key = key if isinstance(key, tuple) else (key,)
        bp = b[(b[keys] == pd.Series(dict(zip(keys, key)))).all(axis=1)] if keys else b
        common = sorted(set(bp["n"]) & set(hp["n"]))
        if not common:
            continue
        fb, fh = _fit(bp[bp["n"].isin(common)]), _fit(hp[hp["n"].isin(common)])
        record: dict = {**dict(zip(keys, key)), "sizes": len(common)}
        for side, f in (("base", fb), ("head", fh)):
            record.update({f"{side}_k": math.nan if f is None else f.exponent,
                           f"{side}_low": math.nan if f is None else f.ci_low,
                           f"{side}_high": math.nan if f is None else f.ci_high})
        if fb is None or fh is None:
            record.update(diff=math.nan, diff_low=math.nan, diff_high=math.nan, verdict="no fit")
        else:
            diff, low, high = _difference(fb, fh)
            record.update(diff=diff, diff_low=low, diff_high=high,
                          verdict="steeper" if low > thresholds.exponent_margin
                          else "flatter" if high < -thresholds.exponent_margin else "same")
        records.append(record)
    columns = [*keys, "sizes", "base_k", "base_low", "base_high", "head_k", "head_low", "head_high", "diff",
               "diff_low", "diff_high", "verdict"]
    return pd.DataFrame.from_records(records, columns=columns)


def _difference(base: ExponentFit, head: ExponentFit) -> tuple[float, float, float]:
    """k_HEAD − k_BASE and its Welch–Satterthwaite t interval."""
    diff = head.exponent - base.exponent
    var = base.se**2 + head.se**2
    if var <= 0:
        return diff, diff, diff
    df = var**2 / sum(f.se**4 / max(f.df, 1) for f in (base, head) if f.se > 0)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(var)
    return diff, diff - half, diff + half
