"""``ditbench compare`` on synthetic results directories with known answers, and on revisions.

Synthetic sides: per size, ``PASSES`` passes of ``BLOCKS`` blocks each, log-normal noise with a
pass-level component (the load a pass shares) and a block-level one, around a chosen law.
"""
from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ditbench.cli import main as cli_main
from ditbench.compare import Thresholds, compare_exponents, compare_sizes
from ditbench.compare.interleave import pass_order
from ditbench.compare.stats import hodges_lehmann
from ditbench.schema import read_results

SIZES = (1024, 2048, 4096, 8192, 16384)
PASSES, BLOCKS = 6, 10
SIGMA_PASS, SIGMA_BLOCK = 0.03, 0.05  # log-normal spreads: of a pass's level, of a block within it


def linear(n: float) -> float:
    return 2e-7 * n


def write_side(path: Path, law: Callable[[float], float], seed: int, *, samples: bool = True,
               sizes: tuple[int, ...] = SIZES, kernel: str = "polynomial") -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(PASSES):
        for n in sizes:
            level = math.log(law(n)) + rng.normal(0, SIGMA_PASS)
            block = np.exp(level + rng.normal(0, SIGMA_BLOCK, BLOCKS))
            rows.append({"experiment": "E1", "kernel": kernel, "op": "forward", "n": n, "m": n, "d": 4, "dv": 4,
                         "bound_spec": "1", "dtype": "float32", "device": "cpu", "threads": 1,
                         "median_s": float(np.median(block)), "status": "ok", "pass_index": p,
                         "samples": json.dumps(block.tolist()) if samples else ""})
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path / "results.csv", index=False)
    (path / "meta.json").write_text(json.dumps({"preset": "synthetic", "seed": seed}))
    return path


def read(path: Path) -> pd.DataFrame:
    return read_results(path / "results.csv")


def test_hodges_lehmann_recovers_a_shift_and_covers_it():
    rng = np.random.default_rng(1)
    base, head = rng.normal(0, 1, 40), rng.normal(0.7, 1, 50)
    shift, low, high = hodges_lehmann(base, head)
    assert low < 0.7 < high and abs(shift - 0.7) < 0.5
    assert hodges_lehmann(base[:2], head[:2])[1] == -math.inf  # too few for a 95 % interval


def test_a_1_3x_slowdown_is_slower_at_every_size(tmp_path):
    base = read(write_side(tmp_path / "b", linear, seed=1))
    head = read(write_side(tmp_path / "h", lambda n: 1.3 * linear(n), seed=2))
    sizes = compare_sizes(base, head)
    assert list(sizes["n"]) == list(SIZES)
    assert (sizes["verdict"] == "slower").all(), sizes
    assert ((sizes["ratio_low"] < 1.3 * 1.1) & (sizes["ratio_high"] > 1.3 / 1.1)).all()
    assert (sizes["p_adj"] >= sizes["p_value"]).all()  # Holm never lowers a p-value
    exponents = compare_exponents(base, head)
    assert exponents["verdict"].tolist() == ["same"]  # a constant factor leaves k alone


def test_an_a_a_pair_shows_no_regression(tmp_path):
    base = read(write_side(tmp_path / "b", linear, seed=3))
    head = read(write_side(tmp_path / "h", linear, seed=4))
    sizes = compare_sizes(base, head)
    assert set(sizes["verdict"]) == {"same"}, sizes
    assert ((sizes["ratio_low"] < 1) & (sizes["ratio_high"] > 1)).sum() >= len(SIZES) - 1
    assert compare_exponents(base, head)["verdict"].tolist() == ["same"]


def test_a_significant_change_below_the_threshold_is_not_a_regression(tmp_path):
    base = read(write_side(tmp_path / "b", linear, seed=5))
    head = read(write_side(tmp_path / "h", lambda n: 1.05 * linear(n), seed=6))
    sizes = compare_sizes(base, head, Thresholds(threshold=1.10))
    assert (sizes["p_adj"] < 0.05).any()  # the test sees it…
    assert set(sizes["verdict"]) == {"same"}  # …but 5 % is inside the A/A noise threshold
    assert set(compare_sizes(base, head, Thresholds(threshold=1.0))["verdict"]) <= {"slower", "same"}


def test_an_n_1_5_regression_is_a_steeper_exponent(tmp_path):
    base = read(write_side(tmp_path / "b", linear, seed=7))
    head = read(write_side(tmp_path / "h", lambda n: 2e-7 * 1024 * (n / 1024) ** 1.5, seed=8))
    exponents = compare_exponents(base, head)
    (row,) = exponents.to_dict("records")
    assert row["verdict"] == "steeper"
    assert row["diff_low"] < 0.5 < row["diff_high"]
    assert row["base_low"] < 1.0 < row["base_high"] and row["head_low"] < 1.5 < row["head_high"]
    sizes = compare_sizes(base, head)
    assert sizes.loc[sizes["n"] == 1024, "verdict"].item() == "same"  # equal at the smallest size
    assert sizes.loc[sizes["n"] == 16384, "verdict"].item() == "slower"


def test_rows_without_samples_use_one_value_per_pass(tmp_path):
    base = read(write_side(tmp_path / "b", linear, seed=9, samples=False))
    head = read(write_side(tmp_path / "h", lambda n: 1.3 * linear(n), seed=10, samples=False))
    sizes = compare_sizes(base, head)
    assert (sizes["base_blocks"] == PASSES).all()
    assert (sizes["verdict"] == "slower").all()


def test_points_on_one_side_only_are_left_out(tmp_path):
    base = read(write_side(tmp_path / "b", linear, seed=11, sizes=SIZES[:3]))
    head = read(write_side(tmp_path / "h", linear, seed=12, sizes=SIZES[1:]))
    assert compare_sizes(base, head)["n"].tolist() == list(SIZES[1:3])
    other = read(write_side(tmp_path / "o", linear, seed=13, kernel="exact"))
    assert compare_sizes(base, other).empty


def test_cli_exit_status_table_and_page(tmp_path, capsys):
    base = write_side(tmp_path / "b", linear, seed=14)
    slow = write_side(tmp_path / "s", lambda n: 1.3 * linear(n), seed=15)
    same = write_side(tmp_path / "a", linear, seed=16)
    assert cli_main(["compare", str(base), str(slow), "--out", str(tmp_path / "c1")]) == 1
    text = capsys.readouterr().out
    assert "REGRESSION" in text and "slower" in text and "ratio H/B" in text
    page = (tmp_path / "c1" / "compare.html").read_text()
    assert "plotly-graph-div" in page and (tmp_path / "c1" / "plotly.min.js").is_file()
    assert len(pd.read_csv(tmp_path / "c1" / "sizes.csv")) == len(SIZES)
    assert cli_main(["compare", str(base), str(same), "--out", str(tmp_path / "c2"), "--no-page"]) == 0
    assert "no significant regression" in capsys.readouterr().out


def test_cli_bad_input_is_a_one_line_user_error(tmp_path, capsys):
    base = write_side(tmp_path / "b", linear, seed=17)
    assert cli_main(["compare", str(base), "no-such-revision-xyz", "--out", str(tmp_path / "c")]) == 2
    assert "both be results directories or both revisions" in capsys.readouterr().err
    assert cli_main(["compare", str(base), str(base), "--threshold", "0.9", "--out", str(tmp_path / "c")]) == 2
    assert "threshold=0.9" in capsys.readouterr().err


def test_passes_alternate_and_reverse():
    assert pass_order(["base", "head"], 3) == [(0, "base"), (0, "head"), (1, "head"), (1, "base"), (2, "base"),
                                               (2, "head")]


TINY = """
name = "tiny"
[[sweep]]
experiment = "tiny"
kernels = ["uniform", "exact"]
n = [256, 512, 1024]
d = 4
bound = [1]
scale = "1/d"
min_run_time = 0.01
min_repeats = 3
ref_rows = 64
timeout_s = 60
"""


@pytest.mark.slow  # two side processes (torch imports) and four passes: ~20 s
def test_compare_two_revisions_interleaved(tmp_path, capsys):
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout: revisions cannot be exported")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "cmp"
    code = cli_main(["compare", "HEAD", "HEAD", "--repo", str(root), "--config", str(config), "--passes", "2",
                     "--out", str(out), "--quiet"])
    assert code in (0, 1)  # real timings: A/A is *usually* 0; the mechanics are what this test checks
    for label in ("base", "head"):
        side = read(out / label)
        assert sorted(side["pass_index"].unique()) == [0, 1]
        assert set(side["kernel"]) == {"uniform", "exact"} and (side["status"] == "ok").all()
        meta = json.loads((out / label / "meta.json").read_text())["compare"]
        assert meta["imported"].startswith(str(out / "copies" / label))  # that side ran its own copy
        assert [(e["pass"], e["side"]) for e in meta["order"]] == pass_order(["base", "head"], 2)
    assert (out / "compare.html").is_file() and "ratio H/B" in capsys.readouterr().out
    # the merged sides are results directories: the statistics run again without measuring
    assert cli_main(["compare", str(out / "base"), str(out / "head"), "--out", str(tmp_path / "again"),
                     "--no-page"]) == code
