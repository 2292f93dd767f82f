"""Read timings into one tidy table: results CSV, asv results, pytest-benchmark JSON.

:func:`read_results` dispatches on what the path is, and every reader returns a DataFrame with
``n``, a time column in seconds (``median_s`` for a results CSV, ``seconds`` otherwise) and the
benchmark's parameters as columns, ready for :func:`ditbench.fit.table.fit_table`.

* results CSV (``*.csv``, DESIGN §5): needs ``kernel``, ``n`` and ``median_s`` or ``seconds``;
  read by :func:`ditbench.schema.read_results` (its dtypes and NA rules, no absent columns added).
* asv: a results directory (holding ``benchmarks.json`` and one folder per machine), an ``.asv``
  folder or a project folder containing ``.asv/results``, or one result file
  ``results/<machine>/<commit>-<env>.json``. Parameter names come from ``benchmarks.json``
  (result files hold only the values, as ``repr`` strings, in ``itertools.product`` order).
  Only ``time`` benchmarks with a parameter called ``n`` are read. Recorded samples
  (``asv run --record-samples``) become one row per sample, else the median (``result``).
  Columns: ``benchmark, machine, commit, env``, the parameters, ``seconds``.
* pytest-benchmark (``--benchmark-json``): ``params`` and ``extra_info`` become columns (``n``
  from either); per-round times (``stats.data``, saved with ``--benchmark-save-data``) become
  one row per round, else ``stats.median``. Columns: ``benchmark`` (test name without the
  parameter id), the parameters, ``seconds``.
Every reader failure is a ValueError with a one-line message naming the file.
"""
from __future__ import annotations

import ast
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema

CSV_NEEDS = ("kernel", "n")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read JSON ({err})") from err
    except RecursionError:  # deeply nested arrays: json's decoder recurses once per level
        raise ValueError(f"{path}: JSON nested too deeply to be a results file") from None


def _expect(path: Path, what: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    """``value`` if it is a ``kind``, else ValueError naming the file, the field and the type found."""
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{path}: {what} must be a {names}, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def read_csv(path: str | Path) -> pd.DataFrame:
    """A results CSV; checks the columns ``ditbench fit`` needs."""
    path = Path(path)
    df = schema.read_results(path, require=(), complete=False)  # the one reader and its NA rules
    missing = [c for c in CSV_NEEDS if c not in df.columns]
    if missing or not ({"median_s", "seconds"} & set(df.columns)):
        need = [*missing] + ([] if {"median_s", "seconds"} & set(df.columns) else ["median_s or seconds"])
        raise ValueError(f"{path}: missing column(s) {', '.join(need)}; found {list(df.columns)}")
    return df


########################################################################################
# asv


def _asv_value(text: str) -> Any:
    """asv stores parameter values as repr strings: "'sdpa'" → 'sdpa', "1024" → 1024."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _asv_result_file(path: Path, benchmarks: dict[str, Any]) -> list[dict[str, Any]]:
    data = _load_json(path)
    if not isinstance(data, dict) or "results" not in data or "result_columns" not in data:
        raise ValueError(f"{path}: not an asv result file (no 'results' / 'result_columns')")
    columns = _expect(path, "result_columns", data["result_columns"], list)
    _expect(path, "results", data["results"], dict)
    base = {"machine": data.get("params", {}).get("machine"), "commit": data.get("commit_hash"),
            "env": data.get("env_name")}
    rows: list[dict[str, Any]] = []
    for name, values in data["results"].items():
        meta = benchmarks.get(name)
        if not isinstance(meta, dict) or meta.get("type") != "time" or "n" not in (meta.get("param_names") or []):
            continue
        entry = dict(zip(columns, _expect(path, f"results[{name!r}]", values, list)))
        params = _expect(path, f"results[{name!r}].params", entry.get("params") or [], list)
        for values_of_one in params:
            _expect(path, f"results[{name!r}].params[…]", values_of_one, list)
        results = _expect(path, f"results[{name!r}].result", entry.get("result") or [], list)
        samples = _expect(path, f"results[{name!r}].samples", entry.get("samples") or [None] * len(results), list)
        for sample in samples:
            if sample is not None:
                _expect(path, f"results[{name!r}].samples[…]", sample, list)
        for combo, median, sample in zip(itertools.product(*params), results, samples):
            if median is None or (isinstance(median, float) and math.isnan(median)):
                continue  # asv's marker for a failed or skipped combination
            row = {"benchmark": name, **base,
                   **{p: _asv_value(v) for p, v in zip(meta["param_names"], combo)}}
            rows.extend({**row, "seconds": _seconds(path, name, s)} for s in (sample or [median]))
    return rows


def _asv_results_dir(path: Path) -> Path | None:
    for candidate in (path, path / "results", path / ".asv" / "results"):
        if (candidate / "benchmarks.json").is_file():
            return candidate
    return None


def read_asv(path: str | Path) -> pd.DataFrame:
    """asv results: a results directory (all machines and commits) or one result file."""
    path = Path(path)
    root = _asv_results_dir(path) if path.is_dir() else _asv_results_dir(path.parent.parent)
    if root is None:
        raise ValueError(f"{path}: no asv benchmarks.json found (needed for parameter names)")
    benchmarks = _expect(root / "benchmarks.json", "the top level", _load_json(root / "benchmarks.json"), dict)
    files = [path] if path.is_file() else sorted(
        f for f in root.glob("*/*.json") if f.name != "machine.json")
    rows = [row for f in files for row in _asv_result_file(f, benchmarks)]
    if not rows:
        raise ValueError(f"{path}: no asv time benchmark with a parameter 'n' has results")
    return pd.DataFrame(rows)


########################################################################################
# pytest-benchmark


def read_pytest_benchmark(path: str | Path) -> pd.DataFrame:
    """A ``pytest --benchmark-json`` file."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    rows: list[dict[str, Any]] = []
    for i, bench in enumerate(data["benchmarks"]):
        _expect(path, f"benchmarks[{i}]", bench, dict)
        columns = {**_expect(path, f"benchmarks[{i}].params", bench.get("params") or {}, dict),
                   **_expect(path, f"benchmarks[{i}].extra_info", bench.get("extra_info") or {}, dict)}
        if "n" not in columns:
            continue
        stats = _expect(path, f"benchmarks[{i}].stats", bench.get("stats") or {}, dict)
        times = _expect(path, f"benchmarks[{i}].stats.data",
                        stats.get("data") or ([stats["median"]] if "median" in stats else []), list)
        base = {"benchmark": str(bench.get("name", "")).split("[")[0], **columns}
        rows.extend({**base, "seconds": _seconds(path, str(bench.get("name", i)), t)} for t in times)
    if not rows:
        raise ValueError(f"{path}: no pytest-benchmark entry has an 'n' in params or extra_info")
    return pd.DataFrame(rows)


def _seconds(path: Path, name: str, value: Any) -> float:
    """A recorded time: a finite number ≥ 0 (anything else is a malformed file, said so)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{path}: {name}: a time must be a finite number ≥ 0 of seconds, got {value!r}")
    return float(value)


def read_results(path: str | Path) -> pd.DataFrame:
    """Read any supported timing source, dispatching on what ``path`` is (module doc)."""
    path = Path(path)
    if path.is_dir():
        return read_asv(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file or directory")
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    if path.suffix.lower() == ".json":
        data = _load_json(path)
        if isinstance(data, dict) and "benchmarks" in data:
            return read_pytest_benchmark(path)
        if isinstance(data, dict) and "result_columns" in data:
            return read_asv(path)
        raise ValueError(f"{path}: JSON is neither pytest-benchmark ('benchmarks') nor asv ('result_columns')")
    raise ValueError(f"{path}: unknown results format (expected .csv, .json or an asv results directory)")
