"""``ditbench fit``: output formats, --by, and one-line errors with exit status 2."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ditbench.cli import main


@pytest.fixture
def results_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        dict(experiment="E1", kernel=kernel, d=8, n=n, median_s=scale * n**k * np.exp(rng.normal(0, 0.02)), status="ok")
        for kernel, k, scale in (("sdpa", 2.0, 1e-10), ("polynomial", 1.0, 1e-7))
        for n in 2 ** np.arange(8, 15)
    ]
    path = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_json_lists_group_columns_and_fit_fields(results_csv, capsys):
    assert main(["fit", str(results_csv), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["kernel"] for r in records] == ["polynomial", "sdpa"]
    assert set(records[0]) == {"experiment", "kernel", "d", "exponent", "ci_low", "ci_high", "r2",
                               "n_min", "n_max", "points", "regime", "regime_reason", "best_model", "model", "note"}
    assert records[0]["regime"] == "almost-linear" and records[1]["regime"] == "quadratic"
    assert isinstance(records[0]["points"], int) and records[0]["d"] == 8


def test_by_overrides_grouping_and_csv_round_trips(results_csv, capsys):
    assert main(["fit", str(results_csv), "--by", "experiment", "--format", "csv"]) == 0
    from io import StringIO
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    assert list(table.columns[:2]) == ["experiment", "exponent"] and len(table) == 1


def test_estimator_and_model_flags_reach_the_fit(results_csv, capsys):
    assert main(["fit", str(results_csv), "--format", "csv", "--estimator", "ols-hc3"]) == 0
    from io import StringIO
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    assert len(table) == 2 and table["exponent"].notna().all()
    assert main(["fit", str(results_csv), "--format", "csv", "--model", "floor"]) == 0
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    assert set(table["model"]) == {"floor"}


def test_grouping_and_pooling_are_reported(results_csv, capsys):
    assert main(["fit", str(results_csv), "--by", "kernel"]) == 0
    err = capsys.readouterr().err
    assert "grouped by kernel" in err and "pooled nothing else" in err
    assert main(["fit", str(results_csv), "--by", "experiment"]) == 0
    assert "pooled kernel (2 values)" in capsys.readouterr().err


def test_all_rows_skipped_is_an_error(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame({"kernel": ["a"], "n": [8], "median_s": [None], "status": ["skipped"]}).to_csv(path, index=False)
    assert main(["fit", str(path)]) == 2
    assert "no measured rows" in capsys.readouterr().err


def test_table_format_is_default(results_csv, capsys):
    assert main(["fit", str(results_csv)]) == 0
    out = capsys.readouterr().out
    assert "almost-linear" in out and "quadratic" in out


def test_insufficient_group_is_null_in_json(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame({"kernel": ["a", "a"], "n": [1, 2], "median_s": [1.0, 2.0]}).to_csv(path, index=False)
    assert main(["fit", str(path), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert record["regime"] == "insufficient-data" and record["exponent"] is None


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p / "missing.csv", "no such file"),
        (lambda p: (p / "x.csv").write_text("a,b\n1,2\n") and p / "x.csv", "missing column"),
        (lambda p: (p / "x.json").write_text("[1, 2]") and p / "x.json", "neither pytest-benchmark"),
        (lambda p: p, "no asv benchmarks.json"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, make, match):
    assert main(["fit", str(make(tmp_path))]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ditbench fit: ") and match in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_unknown_group_column_exits_2(results_csv, capsys):
    assert main(["fit", str(results_csv), "--by", "kernel,nope"]) == 2
    assert "cannot group by ['nope']" in capsys.readouterr().err
