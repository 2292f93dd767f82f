"""``ditbench fit RESULTS [--by COLS] [--format table|csv|json]``: exponents per group."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from .choices import ESTIMATORS, MODELS

if TYPE_CHECKING:
    import pandas as pd
# The readers and the fit (pandas, statsmodels, scipy) are imported by main: the parser, and so
# `ditbench fit --help`, loads none of them (tests/test_imports.py).

JSON_FIELDS: tuple[str, ...] = ("exponent", "ci_low", "ci_high", "r2", "n_min", "n_max", "points", "regime",
                                "regime_reason", "best_model", "model", "note")


def _records(table: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    """Group columns plus :data:`JSON_FIELDS`; missing values (insufficient data) become null."""
    import pandas as pd

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
    parser.add_argument("--model", choices=MODELS, default="auto",
                        help="exponent model: auto (AICc choice of power, floor, step; default) or one forced")
    parser.add_argument("--pool", default="",
                        help="comma-separated identity columns (commit, benchmark) to pool on purpose")


def main(args: argparse.Namespace) -> int:
    from .readers import read_results
    from .table import fit_table, pooled_columns

    by = None if args.by is None else [c.strip() for c in args.by.split(",") if c.strip()]
    pool = [c.strip() for c in args.pool.split(",") if c.strip()]
    try:
        data = read_results(args.results)
        table = fit_table(data, by=by, pool=pool, estimator=args.estimator, model=args.model)
    except ValueError as err:
        print(f"ditbench fit: {err}".splitlines()[0], file=sys.stderr)
        return 2
    keys = list(table.columns[: table.columns.get_loc("exponent")])  # the group columns come first
    pooled = pooled_columns(data, keys)
    print("ditbench fit: grouped by " + (", ".join(keys) or "nothing") + "; pooled "
          + (", ".join(f"{c} ({v} values)" for c, v in pooled.items()) if pooled else "nothing else"),
          file=sys.stderr)
    sys.stdout.write(FORMATS[args.format](table, keys).rstrip("\n") + "\n")
    return 0
