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
from scipy import stats

from ditbench.cli import main as cli_main
from ditbench.compare import Thresholds, compare_exponents, compare_sizes
from ditbench.compare.interleave import pass_order
from ditbench.compare.stats import hodges_lehmann, holm, mann_whitney_null, passes_needed, smallest_p
from ditbench.schema import read_results

SIZES = (1024, 2048, 4096, 8192, 16384)
PASSES, BLOCKS = 6, 10
SIGMA_PASS, SIGMA_BLOCK = 0.03, 0.05  # log-normal spreads: of a pass's level, of a block within it


def linear(n: float) -> float:
    return 2e-7 * n


def write_side(path: Path, law: Callable[[float], float], seed: int, *, samples: bool = True,
               sizes: tuple[int, ...] = SIZES, kernel: str = "polynomial", passes: int = PASSES,
               sigma_pass: float = SIGMA_PASS, sigma_block: float = SIGMA_BLOCK) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(side_rows(law, np.random.default_rng(seed), samples=samples, sizes=sizes, kernel=kernel,
                           passes=passes, sigma_pass=sigma_pass, sigma_block=sigma_block)).to_csv(
        path / "results.csv", index=False)
    (path / "meta.json").write_text(json.dumps({"preset": "synthetic", "seed": seed}))
    return path


def side_rows(law: Callable[[float], float], rng: np.random.Generator, *, samples: bool = True,
              sizes: tuple[int, ...] = SIZES, kernel: str = "polynomial", passes: int = PASSES,
              sigma_pass: float = SIGMA_PASS, sigma_block: float = SIGMA_BLOCK) -> list[dict]:
    """One row per (pass, size): a pass level law(n)·e^N(0, sigma_pass) shared by its BLOCKS blocks,
    each e^N(0, sigma_block) around it."""
    rows = []
    for p in range(passes):
        for n in sizes:
            level = math.log(law(n)) + rng.normal(0, sigma_pass)
            block = np.exp(level + rng.normal(0, sigma_block, BLOCKS))
            rows.append({"experiment": "E1", "kernel": kernel, "op": "forward", "n": n, "m": n, "d": 4, "dv": 4,
                         "bound_spec": "1", "dtype": "float32", "device": "cpu", "threads": 1,
                         "median_s": float(np.median(block)), "status": "ok", "pass_index": p,
                         "samples": json.dumps(block.tolist()) if samples else ""})
    return rows


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
    # pass spread 0.005 ≪ log(1.05) = 0.049: the passes of the two sides separate completely
    base = read(write_side(tmp_path / "b", linear, seed=5, sigma_pass=0.005))
    head = read(write_side(tmp_path / "h", lambda n: 1.05 * linear(n), seed=6, sigma_pass=0.005))
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


def test_the_exact_mann_whitney_null_matches_scipy():
    for m, n in ((3, 4), (6, 6), (5, 8)):
        pmf = mann_whitney_null(m, n)  # (m·n + 1,)
        assert pmf.sum() == pytest.approx(1.0) and np.allclose(pmf, pmf[::-1])  # U is symmetric about m·n/2
        head = np.arange(m, dtype=float) + 0.5  # U = number of (head, base) pairs with head > base
        for u in range(0, m * n + 1, 3):
            base = np.sort(np.concatenate([np.arange(n - 1, dtype=float), [m + 1.0]]))  # any ties-free layout…
            # …U is scipy's statistic for these samples; its exact upper tail equals the pmf's
            stat = stats.mannwhitneyu(head, base, method="exact", alternative="greater")
            assert stat.pvalue == pytest.approx(pmf[int(stat.statistic):].sum())
            head = head + (u % 2)  # move the samples to visit other U values
    assert smallest_p(6, 6) == pytest.approx(2 / 924)
    assert passes_needed(7, 0.05) == 6  # 7 sizes: 2/C(10, 5)·7 = 0.056, 2/C(12, 6)·7 = 0.015


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(20)
    for p in (rng.uniform(0, 0.1, 7), np.array([0.01, 0.04, 0.03, 0.005]), np.array([0.5]), rng.uniform(0, 1, 12)):
        assert np.allclose(holm(p), multipletests(p, method="holm")[1])


def test_the_moses_interval_covers_a_known_shift_at_its_level():
    rng = np.random.default_rng(21)
    trials, shift = 400, 0.3
    covered = 0
    for _ in range(trials):
        base, head = rng.standard_t(3, 6), rng.standard_t(3, 6) + shift  # heavy tails: still distribution-free
        _, low, high = hodges_lehmann(base, head)
        covered += low <= shift <= high
    # exact coverage ≥ 1 − 2·P(U ≤ k − 1) ≥ 0.95; allow three binomial standard errors below it
    assert covered / trials >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / trials)


def test_pass_correlated_noise_does_not_fool_the_pass_level_test():
    # Built to fool a block-level test: each pass's level moves by 15 % (its load and process), while
    # its 10 blocks agree to 1 %. Identical code on both sides, 6 passes each, 2 sizes (Holm over 2).
    rng = np.random.default_rng(22)
    trials, sizes, sigma_pass, sigma_block = 40, (2048, 4096), 0.15, 0.01
    alarms = block_level_alarms = 0
    for _ in range(trials):
        base, head = (pd.DataFrame(side_rows(linear, rng, sizes=sizes, sigma_pass=sigma_pass,
                                             sigma_block=sigma_block)) for _ in range(2))
        table = compare_sizes(base, head, Thresholds(threshold=1.0))  # the test alone decides
        alarms += bool((table["verdict"] != "same").any())
        for n in sizes:  # what a per-block Mann–Whitney test says about the same data
            lb, lh = (np.concatenate([json.loads(t) for t in side.loc[side["n"] == n, "samples"]])
                      for side in (base, head))
            block_level_alarms += stats.mannwhitneyu(lh, lb).pvalue < 0.05 / len(sizes)
            break
    # the permutation test over exchangeable passes is exact and Holm keeps the family-wise rate
    # ≤ alpha = 0.05: allow the binomial 99.9 % quantile of `trials` draws at 0.05
    assert alarms <= stats.binom.ppf(0.999, trials, 0.05), alarms
    assert block_level_alarms >= 5 * 0.05 * trials  # the data do fool the block-level test (≥ 5× its nominal rate)


def test_a_1_3x_slowdown_is_caught_through_pass_noise_with_enough_passes(tmp_path):
    # pass spread 0.05 (the quiet A/A level, docs/benchmarks.md): 8 passes a side separate log 1.3 = 0.26
    base = read(write_side(tmp_path / "b", linear, seed=23, passes=8, sigma_pass=0.05))
    head = read(write_side(tmp_path / "h", lambda n: 1.3 * linear(n), seed=24, passes=8, sigma_pass=0.05))
    sizes = compare_sizes(base, head)
    assert (sizes["base_passes"] == 8).all() and (sizes["base_blocks"] == 8 * BLOCKS).all()
    assert (sizes["verdict"] == "slower").all(), sizes


def test_too_few_passes_is_said_not_hidden(tmp_path, capsys):
    base = write_side(tmp_path / "b", linear, seed=25, passes=3)
    head = write_side(tmp_path / "h", lambda n: 2 * linear(n), seed=26, passes=3)
    assert cli_main(["compare", str(base), str(head), "--out", str(tmp_path / "c"), "--no-page"]) == 0
    text = capsys.readouterr().out
    assert "WARNING: too few passes" in text and "need ≥ 5 passes a side" in text  # 5 sizes: 2/C(10, 5)·5 < 0.05
    sizes = pd.read_csv(tmp_path / "c" / "sizes.csv")
    assert set(sizes["verdict"]) <= {"same", "too few"}


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
def test_compare_two_revisions_interleaved(tmp_path, capsys, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout: revisions cannot be exported")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the exported trees (and the side processes')
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
        assert meta["imported"].startswith(str(tmp_path / "cache" / "ditbench-compare" / meta["sha"] / "tree"))
        assert [(e["pass"], e["side"]) for e in meta["order"]] == pass_order(["base", "head"], 2)
    assert (out / "compare.html").is_file() and "ratio H/B" in capsys.readouterr().out
    # the merged sides are results directories: the statistics run again without measuring
    assert cli_main(["compare", str(out / "base"), str(out / "head"), "--out", str(tmp_path / "again"),
                     "--no-page"]) == code
