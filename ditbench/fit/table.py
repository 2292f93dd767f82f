"""One power-law fit per group of a tidy results table (``ditbench fit``'s engine).

Default grouping (``by=None``): every column present that is not the size, a time, an error
metric or bookkeeping — see :data:`ditbench.schema.NOT_KEYS` (results columns that are not
settings, and foreign timing columns) and the ``err_`` prefix — with two refinements:

* **spec columns win**: if ``X_spec`` is present (e.g. ``bound_spec = "0.5*sqrt(ln n)"``), group
  by it and not by ``X``, whose numeric value then changes with n by design;
* **n-derived columns are not keys**: ``bound``, ``degree``, ``rank`` and ``scale`` are dropped
  from the default when, within the groups formed by the other keys, they take one value per n
  but several values across n (a degree chosen per n for a target ε, B = c·√ln n written
  without a spec column). Grouping by them would split one scaling curve into one point each.

``by=[...]`` overrides all of this. Rows whose ``status`` (when that column exists) is not
``"ok"`` are excluded before grouping; an ``ok`` row without a positive time is an error.
Groups with fewer than ``min_sizes`` distinct sizes (or whose points lie exactly on a line, so no
interval exists) get a row with regime ``insufficient-data``, missing values (``<NA>``, never
NaN) in the numeric columns and the reason in ``note``.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Sequence

import pandas as pd

from ..schema import FIT_VALUE_COLUMNS, NOT_KEYS, TIME_COLUMNS
from .power_law import InsufficientDataError, fit_power_law
from .regime import INSUFFICIENT_DATA

N_DERIVED_CANDIDATES: tuple[str, ...] = ("bound", "degree", "rank", "scale")
# The fit's own values, as in fits.csv (ditbench.schema.FITS owns every fits.csv column).
FIT_COLUMNS: tuple[str, ...] = FIT_VALUE_COLUMNS


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


def fit_table(df: pd.DataFrame, by: Sequence[str] | None = None, **options: Any) -> pd.DataFrame:
    """Fit t = e^a·n^k per group of ``df`` (one row per measurement or per repeat).

    Args:
        df: tidy results with ``n`` and a time column (``seconds`` or ``median_s``, in seconds).
        by: grouping columns; ``None`` uses :func:`default_group_columns`.
        **options: passed to :func:`ditbench.fit.power_law.fit_power_law` (estimator, region,
            thresholds, min_sizes).

    Returns:
        One row per group: the group columns, then :data:`FIT_COLUMNS`, then ``sizes``,
        ``dropped_sizes`` (count) and ``note``. Numeric fit columns are nullable (``Float64``).
    """
    time_col = time_column(df)
    keys = default_group_columns(df) if by is None else [by] if isinstance(by, str) else list(by)
    missing = [c for c in keys if c not in df.columns]
    if missing:
        raise ValueError(f"cannot group by {missing}: not columns of the table {list(df.columns)}")
    rows = _usable_rows(df, time_col)
    records: list[dict[str, Any]] = []
    groups = rows.groupby(keys, dropna=False, sort=True) if keys else [((), rows)]
    for key, part in groups:
        record: dict[str, Any] = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        try:
            fit = fit_power_law(part["n"].to_numpy(), part[time_col].to_numpy(), **options)
        except InsufficientDataError as err:
            record.update({c: pd.NA for c in FIT_COLUMNS}, regime=INSUFFICIENT_DATA,
                          sizes=part["n"].nunique(), dropped_sizes=0, note=str(err))
        else:
            record.update({c: getattr(fit, c) for c in FIT_COLUMNS},
                          sizes=fit.sizes, dropped_sizes=len(fit.dropped_sizes), note="")
        records.append(record)
    out = pd.DataFrame.from_records(records, columns=[*keys, *FIT_COLUMNS, "sizes", "dropped_sizes", "note"])
    for column in ("exponent", "ci_low", "ci_high", "intercept", "r2", "n_min", "n_max"):
        out[column] = out[column].astype("Float64")
    for column in ("points", "sizes", "dropped_sizes"):
        out[column] = out[column].astype("Int64")
    return out
