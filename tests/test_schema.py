"""ditbench.schema: the one owner of results/fits columns, their dtypes and NA rules, and the reader."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ditbench import schema
from ditbench.measure.results import ResultStore
from ditbench.measure.summary import SETTING_COLUMNS
from ditbench.report.fitting import FIT_GROUPS
from ditbench.report.select import SERIES_COLUMNS


def _row(**kw) -> dict:
    row = {c: None for c in schema.COLUMNS}
    row.update(experiment="E1", kernel="polynomial", op="forward", n=256, m=256, d=8, dv=8, bound=1.0,
               scale=0.125, eps=1e-3, degree=4, rank=495, dtype="float32", device="cpu", threads=2, seed=0,
               median_s=1.5e-4, iqr_s=2e-6, repeats=5, err_max=3e-7, err_max_rel=3e-7, err_fro_rel=1e-7,
               err_uniform=1.5e-3, err_vs_uniform=2e-4, peak_bytes=123456, status="ok", reason="",
               case_id="abc", bound_spec="1", scale_spec="1/d", params='{"eps": 0.001}', nonfinite=0)
    row.update(kw)
    return row


def test_columns_are_unique_and_design_required_first():
    assert len(set(schema.COLUMNS)) == len(schema.COLUMNS)
    assert schema.COLUMNS[:len(schema.REQUIRED_COLUMNS)] == schema.REQUIRED_COLUMNS
    assert set(schema.MINIMAL_COLUMNS) <= set(schema.REQUIRED_COLUMNS)
    assert not set(schema.FIT_COLUMNS) & set(schema.COLUMNS)  # a fits.csv column is a key or a fit value
    assert all(c.meaning and c.dtype in schema.DTYPES for c in schema.RESULTS + schema.FITS)


def test_consumer_selections_name_schema_columns():
    """Every column list a consumer keeps (series, speed-up settings, report fit groups) names
    columns that the schema owns, so a rename there cannot silently drop one."""
    for selection in (SETTING_COLUMNS, SERIES_COLUMNS, FIT_GROUPS):
        assert set(selection) <= set(schema.COLUMNS), selection


def test_not_keys_are_measurements_not_settings():
    for name in ("n", "median_s", "case_id", "host", "wall_s", "seconds", "err_max"):
        assert name in schema.NOT_KEYS
    for name in ("kernel", "d", "bound_spec", "params", "dtype"):
        assert name not in schema.NOT_KEYS


def test_round_trip_keeps_values_and_types(tmp_path):
    store = ResultStore(tmp_path / "results.csv")
    store.append(_row())
    store.append(_row(kernel="NA", n=512, m=512, degree=None, rank=None, eps=None, err_max=math.inf,
                      bound_spec="", reason="2 non-finite output value(s)", nonfinite=2))
    store.append(_row(kernel="nan", n=1024, m=1024, status="skipped", median_s=None, iqr_s=None, repeats=None,
                      err_max=None, peak_bytes=None, reason="out of memory"))
    frame = schema.read_results(tmp_path / "results.csv")
    assert list(frame.columns) == list(schema.COLUMNS)
    # Text is kept as written; only an empty cell is missing.
    assert frame["kernel"].tolist() == ["polynomial", "NA", "nan"]
    assert frame["bound_spec"].iloc[0] == "1" and pd.isna(frame["bound_spec"].iloc[1])
    assert pd.isna(frame["reason"].iloc[0]) and frame["reason"].iloc[2] == "out of memory"
    # Numbers: ints stay ints when complete, become float with NaN when a cell is empty; inf reads back.
    assert frame["n"].dtype == "int64" and frame["n"].tolist() == [256, 512, 1024]
    assert frame["degree"].dtype == "float64" and frame["degree"].iloc[0] == 4 and pd.isna(frame["degree"].iloc[1])
    assert frame["err_max"].iloc[1] == math.inf and pd.isna(frame["err_max"].iloc[2])
    assert frame["median_s"].iloc[0] == 1.5e-4  # repr round-trips floats exactly
    assert frame["radius"].isna().all()  # never written: missing, not 0


def test_cell_writes_the_na_rules():
    assert schema.cell(None) == "" and schema.cell(math.nan) == "nan"
    assert schema.cell(math.inf) == "inf" and schema.cell(-math.inf) == "-inf"
    assert schema.cell(0.1) == "0.1" and schema.cell("x") == "x"


def test_absent_columns_are_added_and_listed(tmp_path):
    path = tmp_path / "results.csv"
    pd.DataFrame({"kernel": ["exact"], "op": ["forward"], "n": [8], "median_s": [1e-3], "status": ["ok"]}).to_csv(
        path, index=False)
    frame, absent = schema.read_results_with_absent(path)
    assert set(schema.COLUMNS) <= set(frame.columns) and frame["err_uniform"].isna().all()
    assert "err_uniform" in absent and "kernel" not in absent and "case_id" not in absent  # only §5 ones
    bare = schema.read_results(path, require=(), complete=False)
    assert list(bare.columns) == ["kernel", "op", "n", "median_s", "status"]


@pytest.mark.parametrize("text, match", [
    ("kernel,op,n,median_s,status\nexact,forward,eight,1e-3,ok\n", r"column 'n' must hold numbers; data row 1"),
    ("kernel,op,n,median_s,status\nexact,forward,8,1e-3,done\n", r"status values \['done'\]"),
    ("kernel,op,n,median_s,status\nexact,up,8,1e-3,ok\n", r"op values \['up'\]"),
    ("kernel,op,n,median_s,status\nexact,forward,8,,ok\n", "median_s not a positive number"),
    ("kernel,n\nexact,8\n", r"lacks required column\(s\) \['op', 'median_s', 'status'\]"),
    ("", "cannot read CSV"),
])
def test_bad_files_are_refused_naming_what(tmp_path, text, match):
    path = tmp_path / "results.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        schema.read_results(path)


def test_unknown_columns_are_inferred(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("kernel,n,seconds,batch,label\nNA,8,1.0,2,x\nb,16,2.5,3,\n")
    frame = schema.read_results(path, require=(), complete=False)
    assert frame["batch"].dtype == "int64" and frame["seconds"].dtype == "float64"
    assert frame["label"].iloc[0] == "x" and pd.isna(frame["label"].iloc[1])
    assert frame["kernel"].tolist() == ["NA", "b"]


def test_fits_round_trip(tmp_path):
    from ditbench.fit import fit_table

    rows = pd.DataFrame({"kernel": "exact", "d": 8, "n": [64, 128, 256, 512], "status": "ok",
                         "median_s": [1e-6 * (n / 64) ** 2 * (1 + 0.01 * i)
                                      for i, n in enumerate([64, 128, 256, 512])]})
    fits = fit_table(rows)
    assert set(schema.FIT_COLUMNS) <= set(fits.columns)
    fits.to_csv(tmp_path / "fits.csv", index=False)
    back = schema.read_fits(tmp_path / "fits.csv")
    assert back["kernel"].tolist() == ["exact"] and back["d"].dtype == "int64"
    assert back["exponent"].iloc[0] == pytest.approx(fits["exponent"].iloc[0], rel=1e-12)
    assert back["points"].dtype == "int64"

