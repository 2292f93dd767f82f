"""Statistics of ``ditbench compare``: per size a pass-level permutation test and a ratio with
its interval, per kernel the exponent difference with its interval.

Input: two tidy tables (BASE, HEAD) as :func:`ditbench.schema.read_results` returns them, each
row one point of one pass (``pass_index``) with its per-block seconds (``samples``, a JSON list;
else the row's ``median_s``). **The unit of the size test is the pass**, not the block: the blocks
of one pass are taken back to back in one process and share that pass's load, clock state and
memory layout, so they are one draw of the pass's level, not many independent draws (measured:
per-pass medians of one point varied by up to 2× while the blocks within a pass agreed to a few
per cent; a block-level Mann–Whitney test then called identical code different in 3 of 6 A/A
comparisons, docs/benchmarks.md). Each pass is summarised by the median log seconds of its
blocks (:func:`pass_levels`), and

* size test: an exact permutation test of the difference of mean pass levels over every
  reassignment of whole passes to the two sides (scipy ``permutation_test``, two-sided), with the
  number of passes the sides really have, Holm-corrected over every compared (kernel, size)
  (Holm's step-down, :func:`holm`). With m and n passes its smallest p-value is 2/C(m+n, m), so
  Holm over T sizes needs C(m+n, m) > 2T/alpha: 6 passes a side for the default sweep's 7 sizes
  (:func:`passes_needed`; fewer gives "too few" or no possible rejection, and the CLI says so).
* ratio HEAD/BASE: the Hodges–Lehmann shift of the pass levels (median of all pairwise
  differences) with its distribution-free (Moses) interval from the exact Mann–Whitney null
  distribution — the same unit as the test.
* a size is "slower" when the test is significant after Holm *and* the estimated ratio exceeds
  ``threshold`` (a practical margin, chosen from measured A/A ratios: docs/benchmarks.md).
* exponent: :func:`ditbench.fit.fit_power_law` (``model="power"`` on both sides, so the two
  exponents are the same quantity) on each side's blocks with their pass indices (its two-level
  variance model); the difference k_HEAD − k_BASE with a Welch–Satterthwaite t interval (the
  sides are measured independently). "steeper" when the whole interval lies above
  ``exponent_margin``.
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
EXACT_PAIRS = 400  # m·n up to which the Hodges–Lehmann interval uses the exact Mann–Whitney null
PERMUTATIONS = 20_000  # reassignments of passes: exact below this count (C(16, 8) = 12,870), random above
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


def pass_levels(part: pd.DataFrame) -> np.ndarray:
    """``(passes,)`` one value per pass: the median log seconds of that pass's blocks (the unit of
    the size test; a pass's blocks share its load and process, so they are one draw, not many)."""
    return part.groupby("pass_index", sort=True)["seconds"].agg(lambda s: float(np.median(np.log(s)))).to_numpy()


def mann_whitney_null(m: int, n: int) -> np.ndarray:
    """``(m·n + 1,)`` exact null distribution of the Mann–Whitney U statistic (no ties): entry u is
    P(U = u) for samples of sizes m and n (the recursion f(m, n, u) = f(m−1, n, u−n) + f(m, n−1, u))."""
    counts = np.zeros((m + 1, n + 1, m * n + 1))  # counts[i, j, u]: arrangements of i vs j with U = u
    counts[0, :, 0] = counts[:, 0, 0] = 1.0
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            counts[i, j, j:] += counts[i - 1, j, : m * n + 1 - j]
            counts[i, j] += counts[i, j - 1]
    return counts[m, n] / counts[m, n].sum()


def hodges_lehmann(base: np.ndarray, head: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(estimate, low, high) of the shift head − base: the median of all pairwise differences and
    the Moses interval (order statistics k and m·n + 1 − k of those differences, k from the exact
    Mann–Whitney null distribution when m·n ≤ :data:`EXACT_PAIRS`, else its normal approximation).
    Low/high are ∓inf when the samples are too small for any interval at this confidence."""
    diffs = np.sort(np.subtract.outer(np.asarray(head, float), np.asarray(base, float)).ravel())  # (m·n,)
    m, n = len(head), len(base)
    estimate = float(np.median(diffs))
    if m * n <= EXACT_PAIRS:
        cdf = np.cumsum(mann_whitney_null(m, n))  # cdf[u] = P(U ≤ u)
        k = int(np.searchsorted(cdf, (1 - confidence) / 2, side="right"))  # largest k: P(U ≤ k − 1) ≤ α/2
    else:
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        k = int(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12) + 0.5))
    if k < 1:
        return estimate, -math.inf, math.inf
    return estimate, float(diffs[k - 1]), float(diffs[len(diffs) - k])


def smallest_p(m: int, n: int) -> float:
    """The smallest two-sided p-value the pass permutation test can return with m and n passes."""
    return min(1.0, 2.0 / math.comb(m + n, m))


def permutation_p(base: np.ndarray, head: np.ndarray, resamples: int = PERMUTATIONS) -> float:
    """Two-sided p-value of the difference of mean pass levels, over every reassignment of the
    passes to the two sides (exact when there are at most ``resamples`` of them, else that many
    random ones with a fixed seed, so the answer is reproducible)."""
    def difference(h: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(h, axis=axis) - np.mean(b, axis=axis)

    result = stats.permutation_test((np.asarray(head, float), np.asarray(base, float)), difference,
                                    permutation_type="independent", alternative="two-sided", vectorized=True,
                                    n_resamples=resamples, rng=np.random.default_rng(0))
    return float(result.pvalue)


def holm(p: np.ndarray) -> np.ndarray:
    """``(T,)`` Holm-adjusted p-values of ``(T,)`` p-values: sorted ascending, the i-th (0-based)
    multiplied by T − i, made monotone, capped at 1 — statsmodels ``multipletests(method="holm")``'s
    values (tests/test_compare.py checks it), without the full ``gc.collect()`` that function runs on
    every call (0.26 s here; the detection tool calls this thousands of times)."""
    p = np.asarray(p, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)))  # (T,) sorted
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def compare_sizes(base: pd.DataFrame, head: pd.DataFrame, thresholds: Thresholds = Thresholds(), *,
                  resamples: int = PERMUTATIONS) -> pd.DataFrame:
    """One row per (setting, n) measured on both sides: the setting columns, ``n``,
    ``base_passes``, ``head_passes``, ``base_blocks``, ``head_blocks``, ``base_median_s``,
    ``head_median_s`` (medians over that side's pass levels), ``ratio``, ``ratio_low``,
    ``ratio_high`` (HEAD/BASE, 95 % interval), ``p_value``, ``p_adj`` (Holm) and ``verdict`` (one
    of :data:`VERDICTS`). The unit of the test is the pass (module doc); ``resamples`` bounds the
    permutations of each test (:func:`permutation_p`)."""
    keys = settings(base, head)
    b, h = blocks(base, keys), blocks(head, keys)
    records = []
    base_points = dict(iter(b.groupby([*keys, "n"], sort=True)))
    for key, hb in h.groupby([*keys, "n"], sort=True):
        bb = base_points.get(key)
        if bb is None:
            continue
        lb, lh = pass_levels(bb), pass_levels(hb)  # (passes,) each
        record = {**dict(zip([*keys, "n"], key)), "base_passes": len(lb), "head_passes": len(lh),
                  "base_blocks": len(bb), "head_blocks": len(hb),
                  "base_median_s": float(np.exp(np.median(lb))), "head_median_s": float(np.exp(np.median(lh)))}
        if smallest_p(len(lb), len(lh)) >= thresholds.alpha:
            record.update(ratio=record["head_median_s"] / record["base_median_s"], ratio_low=math.nan,
                          ratio_high=math.nan, p_value=math.nan)
        else:
            shift, low, high = hodges_lehmann(lb, lh)
            record.update(ratio=math.exp(shift), ratio_low=math.exp(low), ratio_high=math.exp(high),
                          p_value=permutation_p(lb, lh, resamples))
        records.append(record)
    columns = [*keys, "n", "base_passes", "head_passes", "base_blocks", "head_blocks", "base_median_s",
               "head_median_s", "ratio", "ratio_low", "ratio_high", "p_value", "p_adj", "verdict"]
    table = pd.DataFrame.from_records(records, columns=[c for c in columns if c not in ("p_adj", "verdict")])
    tested = table["p_value"].notna()
    table["p_adj"] = math.nan
    if tested.any():
        table.loc[tested, "p_adj"] = holm(table.loc[tested, "p_value"].to_numpy())
    table["verdict"] = [_size_verdict(r, thresholds) for r in table.itertuples(index=False)]
    return table[columns]


def attainable(sizes: pd.DataFrame, alpha: float) -> bool:
    """Whether the most significant size could pass Holm's first step (p·sizes < alpha) with the
    passes these sides have: False means no size can ever be called slower (too few passes)."""
    if sizes.empty:
        return False
    floor = min(smallest_p(int(r.base_passes), int(r.head_passes)) for r in sizes.itertuples(index=False))
    return floor * len(sizes) < alpha


def passes_needed(tests: int, alpha: float) -> int:
    """Fewest passes per side (equal sides) with which Holm's first step can reject among ``tests``."""
    p = 2
    while smallest_p(p, p) * tests >= alpha:
        p += 1
    return p


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
