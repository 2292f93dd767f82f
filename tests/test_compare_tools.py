"""The tools around ``ditbench compare``: the planner (tools/compare_plan.py) on synthetic A/A
passes with a known answer, and the bad-input paths of the pytest-benchmark gate (tools/bench_pytest.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from test_compare import linear, side_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import compare_plan  # noqa: E402


@pytest.mark.slow  # 14 full compare_sizes judgements and 200 normal-model draws: ~10 s quiet
def test_the_planner_finds_a_clear_slowdown_and_no_false_alarm(tmp_path):
    import numpy as np

    rng = np.random.default_rng(31)
    for side in ("base", "head"):  # 12 A/A passes each, pass spread 0.02 ≪ log 1.3 = 0.26
        where = tmp_path / side
        where.mkdir()
        pd.DataFrame(side_rows(linear, rng, passes=12, sigma_pass=0.02)).to_csv(where / "results.csv", index=False)
    wide, keys = compare_plan.pooled_passes([tmp_path / "base", tmp_path / "head"])
    assert wide.shape == (24, 5)  # every pass a row, every size a column
    table = compare_plan.plan(wide, keys, [6], [1.1], 1.3, "polynomial", draws=5, seed=0)
    assert table.loc[(6, 1.1), "caught_1.3x"] == 1.0 and table.loc[(6, 1.1), "false_alarm_rate"] == 0.0
    floor = compare_plan.plan(wide, keys, [3], [1.1], 1.3, "polynomial", draws=2, seed=0)
    assert floor.loc[(3, 1.1), "caught_1.3x"] == 0.0  # 3 passes: 2/C(6, 3)·5 sizes > 0.05, nothing can reject
    fast = compare_plan.plan_normal(wide, keys, [6], [1.1], 1.3, "polynomial", draws=200, seed=0)
    assert fast.loc[(6, 1.1), "caught_1.3x"] > 0.99 and fast.loc[(6, 1.1), "false_alarm_rate"] < 0.1


def test_bench_pytest_refuses_bad_arguments():
    for args, words in ((["a", "b", "c"], "give BASE and HEAD"), (["--fail", "-5"], "positive percentage"),
                        (["no-such-rev-xyz", "HEAD"], "no-such-rev-xyz")):
        proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_pytest.py"), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and words in proc.stderr, (args, proc.stderr)
