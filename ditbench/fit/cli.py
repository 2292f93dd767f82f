"""``ditbench fit RESULTS [--by COLS] [--format table|csv|json]``: exponents per group."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from collections.abc import Callable

import pandas as pd

from .power_law import ESTIMATORS
from .readers import read_results
from .table import fit_table

JSON_FIELDS: tuple[str, ...] = ("exponent", "ci_low", "ci_high", "r2", "n_min", "n_max", "points", "regime")


def _records(table: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    """Group columns plus :data:`JSON_FIELDS`; missing values (insufficient data) become null."""
    out = []
    for record in table[[*keys, *JSON_FIELDS]].astype(object).to_dict(orient="records"):
        out.append({k: (None if v is pd.NA or (isinstance(v, float) and v != v) else
                        v.item() if hasattr(v, "item") else v) for k, v in record.items()})
    return out


def _table(table: pd.DataFrame, keys: list[str]) -> str:
    return table.to_string(index=False, float_format=lambda x: f"{x:.4g}")


def _csv(table: pd.DataFrame, keys: list[str]) -> str:
    return table.to_csv(index=False)


def _json(table: pd.DataFrame, keys: list[str]) -> str:
    return json.dumps(_records(table, keys), indent=2)


FORMATS: dict[str, Callable[[pd.DataFrame, list[str]], str]] = {"table": _table, "csv": _csv, "json": _json}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="results CSV, asv results directory/file, or pytest-benchmark JSON")
    parser.add_argument("--by", default=None,
                        help="comma-separated grouping columns (default: every key column present; see docs/fit.md)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="table", help="output format")
    parser.add_argument("--estimator", choices=ESTIMATORS, default=ESTIMATORS[0],
                        help="wls-median: per-size medians (default); ols-hc3: every repeat, HC3 errors")
    parser.add_argument("--floor-term", action="store_true",
                        help="add the first-order constant-overhead regressor (see docs/fit.md)")


def main(args: argparse.Namespace) -> int:
    by = None if args.by is None else [c.strip() for c in args.by.split(",") if c.strip()]
    try:
        table = fit_table(read_results(args.results), by=by, estimator=args.estimator, floor_term=args.floor_term)
    except ValueError as err:
        print(f"ditbench fit: {err}".splitlines()[0], file=sys.stderr)
        return 2
    keys = list(table.columns[: table.columns.get_loc("exponent")])  # the group columns come first
    sys.stdout.write(FORMATS[args.format](table, keys).rstrip("\n") + "\n")
    return 0
