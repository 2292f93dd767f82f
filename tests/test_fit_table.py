"""fit_table: default grouping, spec columns, n-derived columns, status filter, small groups."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ditbench.fit import default_group_columns, fit_table

SIZES = 2 ** np.arange(8, 16)  # (8,)


def results(rng=None) -> pd.DataFrame:
    """A DESIGN §5-like table: exact (n²) and polynomial (n) kernels, two bound regimes."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for kernel, exponent in (("sdpa", 2.0), ("polynomial", 1.0)):
        for spec, c in (("1", 1.0), ("0.5*sqrt(ln n)", 0.5)):
            for n in SIZES:
                bound = c if spec == "1" else c * np.sqrt(np.log(n))
                rows.append(dict(
                    experiment="E2", kernel=kernel, op="forward", n=n, m=n, d=8, dv=8,
                    bound=bound, bound_spec=spec, scale=1 / 8, eps=1e-3,
                    degree=int(3 + 4 * bound) if kernel == "polynomial" else np.nan,
                    dtype="float32", device="cpu", threads=2, seed=int(n),
                    median_s=1e-10 * n**exponent * np.exp(rng.normal(0, 0.03)), iqr_s=0.0, repeats=5,
                    err_max=1e-4, peak_bytes=0, status="ok", reason="",
                ))
    return pd.DataFrame(rows)


def test_default_keys_use_spec_and_skip_n_derived_columns():
    df = results()
    keys = default_group_columns(df)
    assert keys == ["experiment", "kernel", "op", "d", "dv", "bound_spec", "scale", "eps", "dtype", "device", "threads"]
    # A fixed degree swept as a parameter (two values at every n) is a key again.
    fixed = pd.concat([df.assign(degree=2), df.assign(degree=4)])
    assert "degree" in default_group_columns(fixed.drop(columns="bound_spec").assign(bound=1.0))


def test_one_row_per_group_with_expected_regimes():
    table = fit_table(results())
    assert len(table) == 4
    by = table.set_index(["kernel", "bound_spec"])
    assert by.loc[("sdpa", "1"), "regime"] == "quadratic"
    assert by.loc[("polynomial", "1"), "regime"] == "almost-linear"
    assert by.loc[("polynomial", "1"), "best_model"] == "n"
    assert set(table.columns) >= {"exponent", "ci_low", "ci_high", "intercept", "r2", "n_min", "n_max",
                                  "points", "regime", "best_model"}
    assert (table["points"] == len(SIZES)).all()


def test_status_rows_excluded_and_small_groups_marked():
    df = results()
    extra = pd.DataFrame([
        dict(kernel="sdpa", bound_spec="1", n=2**20, median_s=np.nan, status="skipped", reason="budget"),
        dict(kernel="tiny", bound_spec="1", n=256, median_s=1e-3, status="ok"),
        dict(kernel="tiny", bound_spec="1", n=512, median_s=2e-3, status="ok"),
    ])
    table = fit_table(pd.concat([df, extra], ignore_index=True), by=["kernel", "bound_spec"])
    tiny = table[table["kernel"] == "tiny"].iloc[0]
    assert tiny["regime"] == "insufficient-data" and tiny["exponent"] is pd.NA
    assert "2 distinct size" in tiny["note"]
    assert table["exponent"].dtype == "Float64" and table["exponent"].isna().sum() == 1  # <NA>, not NaN
    sdpa = table[(table["kernel"] == "sdpa") & (table["bound_spec"] == "1")].iloc[0]
    assert sdpa["n_max"] == SIZES[-1]  # the skipped 2^20 row was not used


def test_bad_tables_raise_one_line_errors():
    df = results()
    with pytest.raises(ValueError, match="cannot group by \\['nope'\\]"):
        fit_table(df, by=["nope"])
    with pytest.raises(ValueError, match="no time column"):
        fit_table(df.drop(columns="median_s"))
    with pytest.raises(ValueError, match="lack a positive 'median_s'"):
        fit_table(df.assign(median_s=-1.0))


def test_seconds_column_preferred_and_by_none_without_keys():
    df = pd.DataFrame({"n": np.repeat(SIZES, 2), "seconds": np.repeat(SIZES * 1e-9, 2) * np.tile([1.0, 1.05], 8)})
    table = fit_table(df)
    assert len(table) == 1 and table["exponent"].iloc[0] == pytest.approx(1.0, abs=1e-9)
    # A single column name is one key, not a sequence of characters.
    two = pd.concat([df.assign(kernel="a"), df.assign(kernel="b")])
    assert fit_table(two, by="kernel")["kernel"].tolist() == ["a", "b"]


def test_commits_and_benchmarks_are_never_pooled_silently():
    # asv results: two commits of one benchmark, the second 3× slower. `--by kernel` must still
    # split by commit (and say so), unless pooling is asked for.
    from ditbench.fit.table import pooled_columns
    rows = [dict(benchmark="bench.time_forward", commit=c, machine="vm", kernel="exact", n=int(n),
                 seconds=f * 1e-9 * n**2)
            for c, f in (("aaa", 1.0), ("bbb", 3.0)) for n in 2 ** np.arange(8, 14)]
    df = pd.DataFrame(rows)
    table = fit_table(df, by=["kernel"])
    assert list(table["commit"]) == ["aaa", "bbb"] and len(table) == 2
    pooled = fit_table(df, by=["kernel"], pool=["commit"])
    assert len(pooled) == 1 and "commit" not in pooled.columns
    assert pooled_columns(df, ["kernel"]) == {"commit": 2}
    assert pooled_columns(df, ["kernel", "commit"]) == {}


def test_samples_column_is_fitted_block_by_block_with_passes():
    import json
    rng = np.random.default_rng(4)
    rows = []
    for p in range(3):
        for n in 2 ** np.arange(8, 15):
            blocks = 1e-9 * n * np.exp(rng.normal(0, 0.02, 4))
            rows.append(dict(kernel="k", n=int(n), pass_index=p, median_s=float(np.median(blocks)),
                             samples=json.dumps(blocks.tolist()), status="ok"))
    table = fit_table(pd.DataFrame(rows))
    assert list(table["kernel"]) == ["k"] and table["regime"].iloc[0] == "almost-linear"
    assert table["points"].iloc[0] == 7  # one point per size (the per-size summary)
