"""One power-law fit per group of a tidy results table (``ditbench fit``'s engine).

Default grouping (``by=None``): every column present that is not the size, a time, an error
metric or bookkeeping — see :data:`ditbench.schema.NOT_KEYS` (results columns that are not
settings, and foreign timing columns) and the ``err_`` prefix — with two refinements:

* **spec columns win**: if ``X_spec`` is present (e.g. ``bound_spec = "0.5*sqrt(ln n)"``), group
  by it and not by ``X``, whose numeric value then changes with n by design;
* **n-derived columns are not keys**: ``bound``, ``degree``, ``rank``, ``scale``, ``d``, ``dv``,
  ``eps`` and ``params`` are dropped from the default when, within the groups formed by the other
  keys, they take one value per n but several values across n (a degree chosen per n for a target
  ε, B = c·√ln n written without a spec column, a sweep's ``per_n`` axes such as d = log2(n)/2 and
  ε = n^−1/2). Grouping by them would split one scaling curve into one point each.

``by=[...]`` overrides all of this, except that the identity columns of a timing source —
:data:`IDENTITY_KEYS`, ``commit`` and ``benchmark`` of asv results — are always added when they
vary: fitting one line through two commits' or two benchmarks' timings is never what a user
means (``pool=[...]`` names the ones to pool on purpose). :func:`pooled_columns` says which
other columns still vary inside the groups, and ``ditbench fit`` prints that.

Rows with a ``samples`` column (a JSON list of seconds per call, one entry per timed block) are
fitted block by block, with ``pass_index`` (when present) as the pass of the two-level
variance model (:mod:`ditbench.fit.variance`). Rows whose ``status`` (when that column exists) is not
``"ok"`` are excluded before grouping; an ``ok`` row without a positive time is an error.
Groups with fewer than ``min_sizes`` distinct sizes (or whose points lie exactly on a line, so no
interval exists) get a row with regime ``insufficient-data``, missing values (``<NA>``, never
NaN) in the numeric columns and the reason in ``note``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..schema import FIT_VALUE_COLUMNS, FITS_BY_NAME, NOT_KEYS, TIME_COLUMNS
from .power_law import InsufficientDataError, fit_power_law
from .regime import INSUFFICIENT_DATA

IDENTITY_KEYS: tuple[str, ...] = ("commit", "benchmark")
N_DERIVED_CANDIDATES: tuple[str, ...] = ("bound", "degree", "rank", "scale", "d", "dv", "eps", "params")
# The fit's own values, as in fits.csv (ditbench.schema.FITS owns every fits.csv column).
FIT_COLUMNS: tuple[str, ...] = FIT_VALUE_COLUMNS
NUMERIC_FIT_COLUMNS: tuple[str, ...] = tuple(c for c in FIT_COLUMNS if FITS_BY_NAME[c].dtype == "float")


def time_column(df: pd.DataFrame) -> str:
    """Name of the time column (``seconds`` preferred, else ``median_s``)."""
    for name in TIME_COLUMNS:
        if name in df.columns:
            return name
    raise ValueError(f"no time column: need one of {list(TIME_COLUMNS)}; columns are {list(df.columns)}")


def _is_n_derived(df: pd.DataFrame, column: str, keys: list[str]) -> bool:
    per_n = df.groupby(keys + ["n"], dropna=False)[column].nunique(dropna=False)
    per_group = df.groupby(keys, dropna=False)[column].nunique(dropna=False) if keys else pd.Series(
        [df[column].nunique(dropna=False)])
    return bool((per_n <= 1).all() and (per_group > 1).any())


def default_group_columns(df: pd.DataFrame) -> list[str]:
    """The default grouping for ``df`` (module doc), in the table's column order."""
    candidates = [
        c for c in df.columns
        if c not in NOT_KEYS and not str(c).startswith("err_") and f"{c}_spec" not in df.columns
    ]
    fixed = [c for c in candidates if c not in N_DERIVED_CANDIDATES]
    return [c for c in candidates if c in fixed or not _is_n_derived(df, c, fixed)]


def _usable_rows(df: pd.DataFrame, time_col: str) -> pd.DataFrame:
    if "n" not in df.columns:
        raise ValueError(f"no size column 'n'; columns are {list(df.columns)}")
    if "status" in df.columns:
        df = df[df["status"].astype(str) == "ok"]
    if df.empty:
        raise ValueError("no measured rows to fit (every row has a status other than 'ok')")
    times = pd.to_numeric(df[time_col], errors="coerce")
    sizes = pd.to_numeric(df["n"], errors="coerce")
    bad = ~(times > 0) | ~(sizes > 0)
    if bad.any():
        row = df[bad].iloc[0]
        raise ValueError(
            f"{int(bad.sum())} measured row(s) lack a positive {time_col!r} or 'n' "
            f"(first: n={row['n']!r}, {time_col}={row[time_col]!r})"
        )
    return df.assign(n=sizes, **{time_col: times})


def pooled_columns(df: pd.DataFrame, keys: Sequence[str]) -> dict[str, int]:
    """Columns (other than sizes, times, errors, bookkeeping and n-derived ones) that take more
    than one value inside some group of ``keys``: what a fit pooled. Column → most values."""
    candidates = [c for c in default_group_columns(df) if c not in keys]
    if not candidates:
        return {}
    if keys:
        counts = df.groupby(list(keys), dropna=False)[candidates].nunique(dropna=False).max()
    else:
        counts = df[candidates].nunique(dropna=False)
    return {c: int(v) for c, v in counts.items() if v > 1}


DRIFT_COLUMN = "drift_ref_s"  # the drift reference per row (ditbench.measure.drift)


def _block_rows(part: pd.DataFrame, time_col: str) -> tuple[Any, Any, Any, Any]:
    """(n, seconds, passes, drift_ref) of a group: one entry per block where ``samples`` is
    recorded; drift_ref is None when the column is absent or missing anywhere in the group."""
    reference = None
    if DRIFT_COLUMN in part.columns:
        values = pd.to_numeric(part[DRIFT_COLUMN], errors="coerce")
        reference = values.to_numpy(dtype=float) if values.notna().all() else None
    if "samples" not in part.columns:
        index = part["pass_index"].to_numpy() if "pass_index" in part.columns else None
        return part["n"].to_numpy(), part[time_col].to_numpy(), index, reference
    n: list[float] = []
    seconds: list[float] = []
    passes: list[int] = []
    drift: list[float] = []
    for i, row in enumerate(part.itertuples(index=False)):
        text = row.samples
        values = json.loads(text) if isinstance(text, str) and text.strip() else [getattr(row, time_col)]
        n.extend([row.n] * len(values))
        seconds.extend(float(v) for v in values)
        label = getattr(row, "pass_index", None) if "pass_index" in part.columns else None
        passes.extend([i if label is None or pd.isna(label) else int(label)] * len(values))
        if reference is not None:
            drift.extend([float(reference[i])] * len(values))
    return n, seconds, passes, (drift if reference is not None else None)


def fit_table(df: pd.DataFrame, by: Sequence[str] | None = None, pool: Sequence[str] = (),
              **options: Any) -> pd.DataFrame:
    """Fit t = e^a·n^k per group of ``df`` (one row per measurement, per repeat or per pass).

    Args:
        df: tidy results with ``n`` and a time column (``seconds`` or ``median_s``, in seconds).
        by: grouping columns; ``None`` uses :func:`default_group_columns`, decided per experiment
            when the table holds several (a column n-derived in one experiment may be swept at
            fixed n in another).
        pool: identity columns (:data:`IDENTITY_KEYS`) to pool on purpose.
        **options: passed to :func:`ditbench.fit.power_law.fit_power_law` (estimator, model,
            region, thresholds, min_sizes).

    Returns:
        One row per group: the group columns, then :data:`FIT_COLUMNS`, then ``sizes``,
        ``dropped_sizes`` (count) and ``note``. Numeric fit columns are nullable (``Float64``).
    """
    time_col = time_column(df)
    if by is None and "experiment" in df.columns and df["experiment"].nunique(dropna=False) > 1:
        # Which columns are n-derived is an experiment's own affair (E3 sweeps eps at one n, so
        # its degree varies at fixed n; E2 chooses a degree per n): decide it per experiment.
        parts = [fit_table(part, pool=pool, **options) for _, part in df.groupby("experiment", dropna=False, sort=True)]
        merged = pd.concat(parts, ignore_index=True, sort=False)
        tail = [*FIT_COLUMNS, "sizes", "dropped_sizes", "note"]
        return merged[[c for c in df.columns if c in merged.columns and c not in tail] + tail]
    keys = default_group_columns(df) if by is None else [by] if isinstance(by, str) else list(by)
    keys += [c for c in IDENTITY_KEYS if c in df.columns and c not in keys and c not in pool
             and df[c].nunique(dropna=False) > 1]
    missing = [c for c in keys if c not in df.columns]
    if missing:
        raise ValueError(f"cannot group by {missing}: not columns of the table {list(df.columns)}")
    rows = _usable_rows(df, time_col)
    records: list[dict[str, Any]] = []
    groups = rows.groupby(keys, dropna=False, sort=True) if keys else [((), rows)]
    for key, part in groups:
        record: dict[str, Any] = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        n, seconds, passes, drift = _block_rows(part, time_col)
        try:
            fit = fit_power_law(n, seconds, passes=passes, drift_ref=drift, **options)
        except InsufficientDataError as err:
            record.update({c: pd.NA for c in FIT_COLUMNS}, regime=INSUFFICIENT_DATA, regime_reason=str(err),
                          sizes=part["n"].nunique(), dropped_sizes=0, note=str(err))
        else:
            record.update({c: getattr(fit, c) for c in FIT_COLUMNS if hasattr(fit, c)},
                          regime_reason=fit.reason, best_model=fit.best_model,
                          step_n=None if fit.step is None else fit.step.n_above,
                          step_factor=None if fit.step is None else fit.step.factor,
                          sizes=fit.sizes, dropped_sizes=len(fit.dropped_sizes), note=_note(fit))
        records.append(record)
    out = pd.DataFrame.from_records(records, columns=[*keys, *FIT_COLUMNS, "sizes", "dropped_sizes", "note"])
    for column in NUMERIC_FIT_COLUMNS:
        out[column] = pd.to_numeric(out[column]).astype("Float64")
    for column in ("points", "sizes", "dropped_sizes"):
        out[column] = out[column].astype("Int64")
    return out


def _note(fit: Any) -> str:
    """What the fit found besides the exponent (a floor, a step, model uncertainty)."""
    parts = []
    if fit.floor_s is not None:
        parts.append(f"constant floor {fit.floor_s:.3g} s fitted (t = floor + c·n^k)")
    if fit.step is not None:
        s = fit.step
        parts.append(f"level step ×{s.factor:.3g} [{s.factor_low:.3g}, {s.factor_high:.3g}] between n = "
                     f"{s.n_below:g} and {s.n_above:g} (not folded into k)")
    if len(fit.ci_models) > 1:
        parts.append(f"interval spans the plausible models {', '.join(fit.ci_models)}")
    return "; ".join(parts)
