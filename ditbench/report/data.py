"""Reading one run's result files (DESIGN §5): ``results.csv``, ``meta.json`` and ``fits.csv``.

The report reads only these files. A run directory is valid when ``results.csv`` exists and holds
the columns every section needs (:data:`REQUIRED_COLUMNS`); the other §5 columns are optional and a
section whose columns are absent is simply omitted.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS_FILE = "results.csv"
META_FILE = "meta.json"
FITS_FILE = "fits.csv"

# The columns without which no section can be drawn.
REQUIRED_COLUMNS = ("kernel", "op", "n", "median_s", "status")
# The full DESIGN §5 schema; absent optional columns are added as missing values.
SCHEMA_COLUMNS = (
    "experiment", "kernel", "op", "n", "m", "d", "dv", "bound", "scale", "eps", "degree", "rank",
    "dtype", "device", "threads", "seed", "median_s", "iqr_s", "repeats", "err_max", "err_max_rel",
    "err_fro_rel", "err_uniform", "err_vs_uniform", "peak_bytes", "status", "reason",
)
NUMERIC_COLUMNS = (
    "n", "m", "d", "dv", "bound", "scale", "eps", "degree", "rank", "threads", "seed", "median_s",
    "iqr_s", "repeats", "err_max", "err_max_rel", "err_fro_rel", "err_uniform", "err_vs_uniform",
    "peak_bytes",
)
STATUSES = ("ok", "skipped", "failed")
OPS = ("forward", "backward")


@dataclass(frozen=True)
class Run:
    """One run directory, loaded.

    results: one row per case, every §5 column present (missing ones are all-NA).
    meta: the parsed ``meta.json`` (empty when the file is absent).
    fits: the run's ``fits.csv`` (None when absent; the report then fits the results itself).
    missing_columns: §5 columns that ``results.csv`` did not have (listed on the page).
    """

    path: Path
    results: pd.DataFrame
    meta: Mapping[str, Any] = field(default_factory=dict)
    fits: pd.DataFrame | None = None
    missing_columns: tuple[str, ...] = ()

    @property
    def ok(self) -> pd.DataFrame:
        """Rows measured successfully with a finite positive time (the stats family's rows are
        statistical, not timing experiments: its own section reads them from ``results``)."""
        r = self.results
        timing = r["workload"] != "stats" if "workload" in r.columns else True
        return r[(r["status"] == "ok") & (r["median_s"] > 0) & timing]

    @property
    def not_ok(self) -> pd.DataFrame:
        """Skipped and failed rows (each carries a reason)."""
        return self.results[self.results["status"] != "ok"]


def load_run(path: Path | str) -> Run:
    """Load the result files of one run directory; ValueError names what is wrong and where."""
    path = Path(path)
    csv = path / RESULTS_FILE
    if not path.is_dir():
        raise ValueError(f"results directory {str(path)!r} does not exist or is not a directory")
    if not csv.is_file():
        raise ValueError(f"{str(path)!r} has no {RESULTS_FILE}; expected the output of `ditbench run`")
    # Every cell as text first: a kernel called "NA" or a bound_spec of "1" must stay as written;
    # only empty cells are missing. Numeric columns are converted in _normalise.
    results = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    missing_required = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing_required:
        raise ValueError(
            f"{csv} lacks required column(s) {missing_required}; it has {list(results.columns)}"
        )
    missing = tuple(c for c in SCHEMA_COLUMNS if c not in results.columns)
    results = _normalise(results, csv)
    return Run(path=path, results=results, meta=_read_meta(path / META_FILE),
               fits=_read_fits(path / FITS_FILE), missing_columns=missing)


def _normalise(results: pd.DataFrame, csv: Path) -> pd.DataFrame:
    """Add absent §5 columns, coerce numerics, and check status/op values."""
    results = results.copy()
    for col in SCHEMA_COLUMNS:
        if col not in results.columns:
            results[col] = pd.NA
    for col in NUMERIC_COLUMNS:
        results[col] = pd.to_numeric(results[col], errors="coerce")  # blank cells → NaN
    for col in ("kernel", "op", "status", "reason", "experiment", "dtype", "device"):
        results[col] = results[col].astype("string")
    bad_status = sorted(set(results["status"].dropna()) - set(STATUSES))
    if bad_status:
        raise ValueError(f"{csv}: status values {bad_status} are not among {list(STATUSES)}")
    bad_op = sorted(set(results["op"].dropna()) - set(OPS))
    if bad_op:
        raise ValueError(f"{csv}: op values {bad_op} are not among {list(OPS)}")
    ok = results["status"] == "ok"
    bad_time = ok & ~(results["median_s"] > 0)
    if bad_time.any():
        first = results[bad_time].iloc[0]
        raise ValueError(
            f"{csv}: {int(bad_time.sum())} row(s) have status 'ok' but median_s not a positive number "
            f"(first: kernel={first['kernel']!r}, n={first['n']}, median_s={first['median_s']})"
        )
    return results


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    return meta


def _read_fits(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def flatten_meta(meta: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, scalar value) pairs of a nested metadata mapping, in file order."""
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_meta(value, prefix=f"{name}.")
        elif isinstance(value, list | tuple):
            yield name, ", ".join(str(v) for v in value)
        else:
            yield name, value


def meta_lookup(meta: Mapping[str, Any], *keys: str) -> str:
    """The first present value among dotted ``keys`` (case-insensitive, last component also
    matched), as text; empty when none is present."""
    flat = {k.lower(): v for k, v in flatten_meta(meta)}
    tails = {k.rsplit(".", 1)[-1]: v for k, v in reversed(list(flat.items()))}
    for key in keys:
        key = key.lower()
        for table in (flat, tails):
            if key in table and table[key] not in (None, ""):
                return str(table[key])
    return ""
