"""tools/asv_detection.py: judging the asv timing gate from asv's own result files, the factor rule,
the exact rate bound. Synthetic data with known answers; nothing is timed."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("asv")
ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(ROOT / "tools"))
asv_detection = _load("asv_detection")
bench_regress = sys.modules["bench_regress"]

NAME = "bench_attention.Forward.time_forward"
PARAMS = [["1024", "4096"], ["'polynomial'", "'exact'"]]


def _save(results_dir: Path, sha: str, samples: list[list[float]]) -> None:
    """An asv results file of ``sha`` with one parameterised time benchmark, as asv writes it
    (asv.results.Results.add_result with samples: asv computes value and stats)."""
    from asv.results import Results
    from asv.runner import BenchmarkResult

    result = Results({"machine": "m", "python": "3.11"}, {}, sha, 0, "3.11", "env", {})
    bench = {"name": NAME, "version": "1", "params": PARAMS}
    result.add_result(bench, BenchmarkResult(result=[float(np.median(s)) for s in samples], samples=samples,
                                             number=[1] * len(samples), errcode=0, stderr="", profile=None),
                      record_samples=True)
    result.save(str(results_dir))
    (results_dir / "m" / "machine.json").write_text('{"machine": "m", "version": 1}')


def test_benchmark_rows_reads_asv_results_and_asvs_significance(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = [list(1e-3 * (1 + 0.02 * rng.standard_normal(20))) for _ in range(4)]
    # polynomial n=1024 1.5× slower (clearly significant), the others identical in distribution
    head = [[1.5 * x for x in base[0]], *[list(1e-3 * (1 + 0.02 * rng.standard_normal(20))) for _ in range(3)]]
    _save(tmp_path, "a" * 40, base)
    _save(tmp_path, "b" * 40, head)
    rows = {r["benchmark"]: r for r in asv_detection.benchmark_rows(tmp_path, "a" * 40, "b" * 40)}
    assert len(rows) == 4
    slow = rows[f"{NAME}(1024, 'polynomial')"]
    assert slow["ratio"] == pytest.approx(1.5, rel=0.02) and slow["significant"]
    assert slow["samples_base"] == slow["samples_head"] == 20
    # identical distributions (20 samples a side): Mann–Whitney at asv's p < 0.002 does not call them different
    assert not any(r["significant"] for name, r in rows.items() if name != f"{NAME}(1024, 'polynomial')")


def test_benchmark_rows_rejects_a_results_dir_without_one_machine(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one machine"):
        asv_detection.benchmark_rows(tmp_path, "a" * 40, "b" * 40)


def _frame(rows: list[tuple[str, str, str, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame([{"comparison": c, "condition": cond, "benchmark": f"{NAME}(1024, '{k}')", "ratio": r,
                          "significant": s, "load_before": 1.0, "load_after": 2.0, "seconds": 100.0}
                         for c, cond, k, r, s in rows])


def test_verdicts_need_significance_and_the_factor_and_the_injected_kernel() -> None:
    frame = _frame([
        ("0", "A/A", "polynomial", 1.4, False),  # beyond the factor but not significant: not caught
        ("1", "r1.3", "polynomial", 1.35, True),  # caught at 1.25, not at 1.5
        ("2", "r1.3", "exact", 1.6, True),  # same-code kernel: fails the gate, but is not a catch
        ("2", "r1.3", "polynomial", 1.1, True),
        ("3", "A/A", "polynomial", 0.6, True),  # significant, but faster: the gate does not fail
    ])
    v = asv_detection.verdicts(frame, 1.25)
    assert list(v["caught"]) == [False, True, False, False]
    assert list(v["gate_fails"]) == [False, True, True, False]
    assert list(asv_detection.verdicts(frame, 1.5)["caught"]) == [False, False, False, False]
    t = asv_detection.table(frame, 1.25)
    assert list(t.index) == ["A/A", "r1.3"] and list(t["caught"]) == [0, 1] and list(t["comparisons"]) == [2, 2]


def test_choose_factor_clears_every_significant_aa_ratio_in_both_directions() -> None:
    # significant 1.02 and 0.8 (= 1.25 with the sides swapped); the insignificant 1.9 cannot fail the gate
    assert asv_detection.choose_factor([1.02, 0.8, 1.9], [True, True, False]) == pytest.approx(1.30)
    assert asv_detection.choose_factor([1.9, 0.5], [False, False]) == pytest.approx(asv_detection.FLOOR)
    assert asv_detection.choose_factor([1.2], [True]) == pytest.approx(1.25)  # strictly above the ratio
    with pytest.raises(ValueError, match="flags"):
        asv_detection.choose_factor([1.0, 1.1], [True])
    with pytest.raises(ValueError, match="positive"):
        asv_detection.choose_factor([0.0], [True])


def test_upper_bound_is_the_exact_one_sided_clopper_pearson_bound() -> None:
    for n in (1, 6, 10, 30):
        assert asv_detection.upper_bound(0, n) == pytest.approx(1 - 0.05 ** (1 / n))
    assert asv_detection.upper_bound(10, 10) == 1.0
    from scipy.stats import binom

    ub = asv_detection.upper_bound(2, 20)
    assert binom.cdf(2, 20, ub) == pytest.approx(0.05)  # P(X ≤ 2 | p = ub) = 5 %: the bound's definition
    with pytest.raises(ValueError):
        asv_detection.upper_bound(3, 2)
    assert asv_detection.lower_bound(10, 10) == pytest.approx(0.05 ** (1 / 10))
    assert asv_detection.lower_bound(0, 10) == 0.0
    lb = asv_detection.lower_bound(8, 10)
    assert 1 - binom.cdf(7, 10, lb) == pytest.approx(0.05)  # P(X ≥ 8 | p = lb) = 5 %


def test_timing_command_is_the_gates_command_with_the_restriction_and_config(tmp_path: Path) -> None:
    cmd = bench_regress.timing_command("A", "B", 1.3, bench="X", config=tmp_path / "c.json")
    for flag in ("--interleave-rounds", "--append-samples", "--no-only-changed", "--split"):
        assert flag in cmd
    assert cmd[:2] == ["asv", "continuous"] and cmd[-2:] == ["A", "B"]
    assert cmd[cmd.index("--factor") + 1] == "1.3" and cmd[cmd.index("-b") + 1] == "X"
    assert cmd[cmd.index("--config") + 1] == str(tmp_path / "c.json")
    assert bench_regress.timing_command("A", "B", 2.0)[bench_regress.timing_command("A", "B", 2.0).index("-b") + 1] \
        == bench_regress.BENCH


def test_comparison_config_keeps_the_repos_settings_and_isolates_results(tmp_path: Path) -> None:
    import json

    (tmp_path / "c").mkdir()
    path = asv_detection.comparison_config(ROOT, tmp_path / "c", tmp_path / "env")
    conf = json.loads(path.read_text())
    assert conf["results_dir"] == str(tmp_path / "c" / "results") and conf["env_dir"] == str(tmp_path / "env")
    assert conf["matrix"] == {"req": {"torch": ["2.13.0"]}} and conf["environment_type"] == "virtualenv"


def test_normal_factor_recovers_the_quantile_of_a_known_spread() -> None:
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    sd = 0.15
    ratios = np.exp(sd * rng.standard_normal(20000))
    expected = np.exp(sd * norm.ppf(1 - 0.05 / 8))  # 1.45: the one-sided 1 − 0.05/8 quantile
    got = asv_detection.normal_factor(list(ratios), benchmarks=8)
    assert expected <= got < expected + asv_detection.STEP + 0.01  # rounded up to the grid
    assert asv_detection.normal_factor(list(ratios), benchmarks=1) < got  # fewer benchmarks: smaller factor
    with pytest.raises(ValueError):
        asv_detection.normal_factor([1.0], benchmarks=8)
