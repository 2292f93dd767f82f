"""Readers: results CSV, asv results (directory and single file), pytest-benchmark JSON.

The asv and pytest-benchmark files are written in the formats those tools produce (asv 0.6
results API version 2 — parameters as repr strings in itertools.product order, names in
benchmarks.json; pytest-benchmark 4/5 ``--benchmark-json`` with and without
``--benchmark-save-data``), copied in shape from files the tools generated on this machine.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ditbench.fit import read_results

ASV_COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
               "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]


def write_asv(root: Path, samples: bool) -> Path:
    results = root / ".asv" / "results"
    (results / "vm").mkdir(parents=True)
    params = [["'exact'", "'poly'"], ["256", "512", "1024"]]
    medians = [1.0e-3, 4.1e-3, 1.6e-2, 2.0e-4, None, 8.1e-4]  # None: a failed combination
    row = [medians, params, "abc", 1795795987738, 5.1, None, None, medians, medians, [1] * 6, [3] * 6,
           [[m, m * 1.1, m * 0.9] if m is not None else None for m in medians] if samples else None]
    while row and row[-1] is None:
        row.pop()
    (results / "vm" / "0123abcd-existing-py.json").write_text(json.dumps({
        "commit_hash": "0123abcd" * 5, "env_name": "existing-py", "date": 1795795984000,
        "params": {"machine": "vm", "cpu": "AMD EPYC", "num_cpu": "2"}, "python": "3.11",
        "requirements": {}, "env_vars": {}, "result_columns": ASV_COLUMNS,
        "results": {
            "bench.Attention.time_forward": row,
            "bench.Attention.peakmem_forward": [[1e6] * 6, params, "def"],
            "bench.time_import": [[1e-3], [], "ghi"],
        },
        "durations": {}, "version": 2,
    }))
    (results / "vm" / "machine.json").write_text(json.dumps({"machine": "vm", "version": 1}))
    (results / "benchmarks.json").write_text(json.dumps({
        "bench.Attention.time_forward": {"name": "bench.Attention.time_forward", "param_names": ["kernel", "n"],
                                         "params": params, "type": "time", "unit": "seconds"},
        "bench.Attention.peakmem_forward": {"name": "bench.Attention.peakmem_forward",
                                            "param_names": ["kernel", "n"], "params": params,
                                            "type": "peakmemory", "unit": "bytes"},
        "bench.time_import": {"name": "bench.time_import", "param_names": [], "params": [], "type": "time",
                              "unit": "seconds"},
        "version": 2,
    }))
    return results


@pytest.mark.parametrize("samples", [False, True])
def test_asv_results_directory(tmp_path, samples):
    results = write_asv(tmp_path, samples)
    for path in (tmp_path, tmp_path / ".asv", results, results / "vm" / "0123abcd-existing-py.json"):
        df = read_results(path)
        assert set(df["benchmark"]) == {"bench.Attention.time_forward"}  # time + has n only
        assert set(df.columns) >= {"benchmark", "machine", "commit", "env", "kernel", "n", "seconds"}
        exact = df[df["kernel"] == "exact"].sort_values("seconds")
        expected = [256, 256, 256, 512, 512, 512, 1024, 1024, 1024] if samples else [256, 512, 1024]
        assert exact["n"].tolist() == expected
        assert len(df[df["kernel"] == "poly"]) == (6 if samples else 2)  # the failed 512 is absent
        assert df["n"].dtype.kind == "i" and df["machine"].iloc[0] == "vm"


def test_asv_without_benchmarks_json_is_a_clear_error(tmp_path):
    results = write_asv(tmp_path, samples=False)
    (results / "benchmarks.json").unlink()
    with pytest.raises(ValueError, match="no asv benchmarks.json"):
        read_results(results)


def pytest_benchmark_json(path: Path, with_data: bool) -> Path:
    benchmarks = []
    for kernel, scale in (("exact", 1e-9), ("poly", 1e-7)):
        for n in (256, 512, 1024, 2048):
            data = [scale * n * f for f in (1.0, 1.1, 0.9)]
            stats = {"min": min(data), "max": max(data), "mean": sum(data) / 3, "stddev": 0.1, "rounds": 3,
                     "median": sorted(data)[1], "iqr": 0.1, "q1": 0.0, "q3": 0.0, "iqr_outliers": 0,
                     "stddev_outliers": 0, "outliers": "0;0", "ld15iqr": 0.0, "hd15iqr": 0.0, "ops": 1.0,
                     "total": sum(data), "iterations": 1}
            if with_data:
                stats["data"] = data
            benchmarks.append({
                "group": None, "name": f"test_forward[{kernel}-{n}]",
                "fullname": f"benchmarks/test_bench.py::test_forward[{kernel}-{n}]",
                "params": {"kernel": kernel, "n": n}, "param": f"{kernel}-{n}", "extra_info": {"d": 8},
                "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5}, "stats": stats,
            })
    benchmarks.append({"name": "test_other", "fullname": "t.py::test_other", "params": None, "param": None,
                       "extra_info": {}, "stats": {"median": 1.0}})
    path.write_text(json.dumps({"machine_info": {}, "commit_info": {}, "benchmarks": benchmarks,
                                "datetime": "2026-11-27T16:00:00", "version": "5.1.0"}))
    return path


@pytest.mark.parametrize("with_data", [False, True])
def test_pytest_benchmark_json(tmp_path, with_data):
    df = read_results(pytest_benchmark_json(tmp_path / "out.json", with_data))
    assert set(df["benchmark"]) == {"test_forward"}
    assert set(df.columns) == {"benchmark", "kernel", "n", "d", "seconds"}
    assert len(df) == (24 if with_data else 8)
    assert df[(df["kernel"] == "exact") & (df["n"] == 512)]["seconds"].median() == pytest.approx(512e-9)


def test_csv_requires_kernel_n_and_a_time(tmp_path):
    good = tmp_path / "r.csv"
    pd.DataFrame({"kernel": ["a"], "n": [1], "seconds": [1.0]}).to_csv(good, index=False)
    assert read_results(good).shape == (1, 3)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"kernel": ["a"], "size": [1]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) n, median_s or seconds"):
        read_results(bad)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("x.txt", "hello", "unknown results format"),
        ("x.json", "{not json", "cannot read JSON"),
        ("x.json", '{"a": 1}', "neither pytest-benchmark"),
        ("x.csv", "", "cannot read CSV"),
    ],
)
def test_unreadable_inputs(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_results(path)
    with pytest.raises(ValueError, match="no such file"):
        read_results(tmp_path / "missing.csv")
