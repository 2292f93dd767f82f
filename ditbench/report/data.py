"""Reading one run's result files (DESIGN §5): ``results.csv``, ``meta.json`` and ``fits.csv``.

The report reads only these files, through :mod:`ditbench.schema` (columns, dtypes, NA rules and
the one reader). A run directory is valid when ``results.csv`` exists and holds the columns every
section needs (:data:`ditbench.schema.MINIMAL_COLUMNS`); the other columns are optional (added
all-missing) and a section whose columns are absent is simply omitted.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..schema import MINIMAL_COLUMNS, read_fits, read_results_with_absent

RESULTS_FILE = "results.csv"
META_FILE = "meta.json"
FITS_FILE = "fits.csv"

__all__ = ["FITS_FILE", "META_FILE", "RESULTS_FILE", "Run", "flatten_meta", "load_run", "meta_lookup"]


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
        timing = (r["workload"] != "stats").fillna(True) if "workload" in r.columns else True
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
    results, missing = read_results_with_absent(csv, require=MINIMAL_COLUMNS)
    fits = read_fits(path / FITS_FILE) if (path / FITS_FILE).is_file() else None
    return Run(path=path, results=results, meta=_read_meta(path / META_FILE), fits=fits, missing_columns=missing)


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
