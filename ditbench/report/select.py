"""Selections over the tidy results table that several figures share: which kernels are exact,
which columns tell series apart, per-(series, n) medians, bound regimes and the Pareto front.

Nothing here fits or plots; fitting lives in :mod:`ditbench.fit`, plotting in :mod:`.figures`.
Everything is read from the rows (the ``exact`` column says which kernels are exact): no kernel
registry is consulted, so a plugin kernel is described as well as a built-in one.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

# The trivial O(n) answer (DESIGN §2): drawn as a baseline, never counted as an approximation.
UNIFORM = "uniform"
# Columns that, when they vary inside a selection, split it into separate series (in this order).
# ``params`` is the JSON of the kernel parameters (e.g. a Performer's feature count) that measure records.
# ``setting`` is the JSON of a workload's fixed values (E5: DiT model, blocks), constant along n.
# ``machine`` (host · CPU · GPU of the worker that measured the row) splits series when a run spans machines.
SERIES_COLUMNS = ("experiment", "kernel", "params", "setting", "bound_spec", "d", "dtype", "device", "machine")


def exact_kernels(rows: pd.DataFrame) -> frozenset[str]:
    """Kernels whose rows say they compute the exact answer (column ``exact``; a file without it
    has none, so no speed-up against exact is drawn)."""
    if "exact" not in rows.columns:
        return frozenset()
    flagged = rows[rows["exact"].astype("boolean").fillna(False).astype(bool)]
    return frozenset(str(k) for k in flagged["kernel"].dropna().unique())


def approximate_kernels(rows: pd.DataFrame, among: Sequence[str] | None = None) -> list[str]:
    """Kernels of ``rows`` (or of ``among``, e.g. a fit table's) that are neither exact according
    to ``rows`` nor the uniform baseline, sorted."""
    exact = exact_kernels(rows)
    names = rows["kernel"].dropna().unique() if among is None else among
    return sorted({str(k) for k in names} - exact - {UNIFORM})


def series_columns(rows: pd.DataFrame) -> list[str]:
    """``kernel`` plus every :data:`SERIES_COLUMNS` entry that takes more than one value for some
    kernel in ``rows`` (a setting that only differs between kernels does not split series)."""
    by_kernel = rows.groupby("kernel")
    return [c for c in SERIES_COLUMNS
            if c == "kernel" or (c in rows.columns and (by_kernel[c].nunique(dropna=True) > 1).any())]


def series_label(key: Sequence[object], columns: Sequence[str]) -> str:
    """Readable legend text for one series, e.g. ``polynomial · B=1.0*sqrt(log(n))``."""
    parts = []
    for col, val in zip(columns, key):
        if col in ("kernel", "experiment"):
            parts.append(str(val))
        elif col == "bound_spec":
            parts.append(f"B={val}")
        elif col in ("params", "setting"):
            parts.append(params_text(val))
        else:
            parts.append(f"{col}={val}")
    return " · ".join(parts)


def params_text(value: object) -> str:
    """``{"features": 16, "seed": 0}`` → ``features=16, seed=0``; other text is returned as is."""
    if not isinstance(value, str):
        return "" if pd.isna(value) else str(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return value
    if not isinstance(parsed, dict):
        return value
    return ", ".join(f"{k}={v}" for k, v in parsed.items()) or "defaults"


def by_series(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Split ``rows`` into labelled series (see :func:`series_columns`), sorted by label."""
    cols = series_columns(rows)
    groups = rows.groupby(cols, dropna=False, sort=True)
    return [(series_label(key if isinstance(key, tuple) else (key,), cols), g) for key, g in groups]


def by_experiment(rows: pd.DataFrame, min_sizes: int = 2) -> list[tuple[str, pd.DataFrame]]:
    """Split ``rows`` by ``experiment`` (missing names become ""), keeping experiments measured
    at ``min_sizes`` or more distinct n; sorted by name."""
    names = rows["experiment"].astype("string").fillna("")
    return [(str(name), g) for name, g in rows.groupby(names, sort=True) if g["n"].nunique() >= min_sizes]


def medians_by_n(rows: pd.DataFrame, value: str = "median_s") -> pd.DataFrame:
    """Per-n median of ``value`` over repeats/seeds: columns ``n, value, count``, sorted by n."""
    g = rows.dropna(subset=[value]).groupby("n")[value]
    return pd.DataFrame({"n": g.median().index, value: g.median().to_numpy(), "count": g.size().to_numpy()})


def exact_baseline(rows: pd.DataFrame) -> str | None:
    """The exact kernel to compare against: the one covering the most n, then fastest at its
    largest n (so the speed-up is against the strongest exact baseline, e.g. SDPA)."""
    candidates = []
    for kernel in sorted(exact_kernels(rows)):
        m = medians_by_n(rows[rows["kernel"] == kernel])
        if len(m):
            candidates.append((-len(m), float(m["median_s"].iloc[-1]), kernel))
    return min(candidates)[2] if candidates else None


def bound_regime(rows: pd.DataFrame) -> pd.Series:
    """The entry-bound regime of each row: ``bound_spec`` text when recorded, else ``B=<bound>``."""
    if "bound_spec" in rows.columns:
        spec = rows["bound_spec"].astype("string")
        return spec.fillna(rows["bound"].map(lambda b: f"{b:g}" if pd.notna(b) else "unknown"))
    return rows["bound"].map(lambda b: f"{b:g}" if pd.notna(b) else "unknown").astype("string")


def nonfinite_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """ok rows whose err_max is ±inf or NaN-with-a-time (non-finite outputs count as infinite
    error): they stay in timing plots and are left out of error plots, so the page lists them."""
    ok = rows[rows["status"] == "ok"]
    return ok[ok["err_max"].notna() & ~np.isfinite(ok["err_max"])]


def pareto_front(seconds: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Boolean mask of points not dominated in (time, error), both to be minimised.

    seconds, errors: ``(p,)``. A point is on the front when no other point is at least as fast
    and at least as accurate while strictly better in one of the two.
    """
    seconds = np.asarray(seconds, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if seconds.shape != errors.shape:
        raise ValueError(f"seconds {seconds.shape} and errors {errors.shape} must have the same shape")
    order = np.lexsort((errors, seconds))  # by time, ties by error
    front = np.zeros(seconds.shape, dtype=bool)
    best_err = np.inf
    for i in order:
        if errors[i] < best_err:  # faster points all have larger error: i is not dominated
            front[i] = True
            best_err = errors[i]
    return front


def best_at_error_levels(points: pd.DataFrame) -> pd.DataFrame:
    """For each Pareto point's error level, the fastest configuration reaching it.

    points: columns ``label, median_s, err_max`` (one row per configuration). Returns the front
    sorted from loosest to tightest error: ``err_max`` (the level), ``label``, ``median_s``.
    """
    mask = pareto_front(points["median_s"].to_numpy(), points["err_max"].to_numpy())
    front = points[mask].sort_values("err_max", ascending=False)
    return front[["err_max", "label", "median_s"]].reset_index(drop=True)


def pareto_regimes(rows: pd.DataFrame) -> list[str]:
    """The entry-bound regimes of ok forward rows, sorted (E6 draws one Pareto view per regime:
    nearly uniform attention at small B and far-from-uniform attention at large B differ)."""
    ok = rows[(rows["op"] == "forward") & (rows["status"] == "ok")]
    return sorted(bound_regime(ok).dropna().unique(), key=lambda r: (_number(r), str(r)))


def _number(text: object) -> float:
    try:
        return float(str(text))
    except ValueError:
        return np.inf  # expressions such as 1.0*sqrt(log(n)) after the constants


def pareto_points(rows: pd.DataFrame, regime: str | None = None) -> tuple[pd.DataFrame, str] | None:
    """The (n, B, d) slice of forward rows where most approximate kernels were measured (ties:
    the largest n), as one point per configuration with its Pareto flag; ``regime`` restricts the
    choice to one entry-bound regime (see :func:`pareto_regimes`).

    Returns ``(points, where)`` with points columns ``label, kernel, median_s, err_max, front``
    and ``where`` a description of the slice; None unless two approximate kernels share a slice.
    """
    ok = rows[(rows["op"] == "forward") & (rows["status"] == "ok") & np.isfinite(rows["err_max"])]
    if ok.empty:
        return None
    ok = ok.assign(regime=bound_regime(ok))
    if regime is not None:
        ok = ok[ok["regime"] == regime]
    approx = set(approximate_kernels(ok))
    best: tuple[int, float] | None = None
    chosen = None
    experiment = ok["experiment"].astype("string").fillna("")
    for key, g in ok.groupby([experiment, "n", "regime", "d"], dropna=False):
        score = (len(approx & set(g["kernel"])), float(key[1]))
        if best is None or score > best:
            best, chosen = score, (key, g)
    if best is None or best[0] < 2:
        return None
    assert chosen is not None  # set together with best
    (_, n, regime, d), g = chosen
    # Parameters that tell one kernel's configurations apart (e.g. degree, feature rank).
    config = [c for c in ("degree", "rank", "eps", "params") if c in g.columns]
    varying = {k: [c for c in config if kg[c].nunique() > 1] for k, kg in g.groupby("kernel")}
    g = g.assign(label=[_config_label(r, varying[r["kernel"]]) for _, r in g.iterrows()])
    pts = g.groupby(["label", "kernel"], as_index=False)[["median_s", "err_max"]].median()
    pts["front"] = pareto_front(pts["median_s"].to_numpy(), pts["err_max"].to_numpy())
    d_text = "" if pd.isna(d) else f", d = {d:g}"
    return pts, f"n = {n:g}, B = {regime}{d_text}"


def _config_label(row: pd.Series, params: Sequence[str]) -> str:
    extra = [params_text(row[p]) if p == "params" else f"{p}={row[p]:g}" for p in params if pd.notna(row[p])]
    return f"{row['kernel']} ({', '.join(extra)})" if extra else str(row["kernel"])
