"""`ditbench run` and its summary: arguments, exit codes, fit/report hooks, summary on synthetic data;
plus the timing and memory probes on calls with known cost."""
from __future__ import annotations

import math
import time

import pandas as pd
import pytest
import torch

from ditbench.cli import main as ditbench_main
from ditbench.measure import COLUMNS, read_results
from ditbench.measure.memory import measure_peak
from ditbench.measure.summary import speedups, summarize
from ditbench.measure.timing import time_call

TINY = """
[[sweep]]
experiment = "C"
kernels = ["exact", "uniform"]
n = [32, 64]
d = 4
min_run_time = 0.001
min_repeats = 2
"""


def rows(**columns) -> pd.DataFrame:
    """A results table with one setting (E1, d = 8, B = 1, …) and the given columns."""
    defaults = {"experiment": "E1", "op": "forward", "d": 8, "dv": 8, "bound_spec": "1", "scale_spec": "1/d",
                "dtype": "float32", "device": "cpu", "seed": 0}
    return pd.DataFrame(defaults | columns)


def test_summary_on_synthetic_results_and_fits():
    results = rows(
        kernel=["exact", "exact", "exact", "poly", "poly", "poly", "uniform"],
        n=[1024, 2048, 4096, 1024, 2048, 4096, 4096],
        median_s=[1.0, 4.0, 16.0, 0.5, 1.0, 8.0, 0.001],
        status=["ok", "ok", "skipped", "ok", "ok", "failed", "ok"],
        reason=["", "", "over budget", "", "", "timeout after 3 s", ""],
        err_max=[1e-8, 2e-8, math.nan, 1e-4, 3e-4, math.nan, 5e-3],
        err_uniform=[5e-3] * 7, err_vs_uniform=[2e-6, 4e-6, math.nan, 0.02, 0.06, math.nan, 1.0],
    )
    # Largest n where both exact and the kernel ran ok is 2048: 4.0 / 1.0 = 4×; uniform never overlaps.
    table = speedups(results)
    assert table[["kernel", "n", "speedup"]].values.tolist() == [["poly", 2048, 4.0]]
    fits = pd.DataFrame({"experiment": ["E1"], "kernel": ["poly"], "exponent": [1.04], "ci_low": [0.98],
                         "ci_high": [1.1], "intercept": [-20.0], "r2": [0.99], "n_min": [1024], "n_max": [2048],
                         "points": [2], "regime": ["almost-linear"], "best_model": ["power"]})
    text = summarize(results, fits)
    assert "7 points: 5 ok, 1 skipped, 1 failed" in text
    assert "FAILED E1 poly n=4096: timeout after 3 s" in text
    assert "experiment=E1 kernel=poly: k = 1.04 [0.98, 1.1], regime almost-linear" in text
    assert "E1 poly (d=8, B=1) n=2048: 4×" in text
    assert "E1 poly: err_max 0.0003 at n=2048 (uniform 0.005, ratio 0.06)" in text


@pytest.mark.slow
def test_cli_runs_a_config_and_calls_fit_and_report_hooks(tmp_path, monkeypatch, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    calls = {}

    def fit_table(frame):
        calls["fit"] = len(frame)
        return pd.DataFrame({"kernel": ["exact"], "exponent": [2.0], "ci_low": [1.9], "ci_high": [2.1],
                             "regime": ["quadratic"]})

    def build_report(dirs, out):
        calls["report"] = (list(dirs), out)
        return out / "index.html"

    # Patch the functions on the real (lazy) packages, not stand-in modules: the run also imports
    # other names from ditbench.fit (the stats family's rates), which a stand-in would lack when
    # this test runs first in its process.
    import ditbench.fit
    import ditbench.report
    monkeypatch.setattr(ditbench.fit, "fit_table", fit_table)
    monkeypatch.setattr(ditbench.report, "build_report", build_report)
    out = tmp_path / "run"
    code = ditbench_main(["run", "--config", str(config), "--out", str(out), "--threads", "1",
                          "--executor", "in-process", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    frame = read_results(out / "results.csv")
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 4 and (frame["status"] == "ok").all()
    assert calls == {"fit": 4, "report": ([out], out / "report")}
    assert pd.read_csv(out / "fits.csv")["exponent"].tolist() == [2.0]
    assert "4 points: 4 ok, 0 skipped, 0 failed" in printed and "kernel=exact: k = 2 [1.9, 2.1]" in printed
    # Running into the same directory again without --resume refuses (never mixes runs).
    assert ditbench_main(["run", "--config", str(config), "--out", str(out), "--executor", "in-process",
                          "--quiet", "--no-report"]) == 2
    assert "pass --resume" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--config", "/nonexistent.toml"], "does not exist"),
    (["--preset", "smoke", "--resume"], "--resume needs --out"),
])
def test_cli_errors_exit_2_with_a_message(argv, message, capsys):
    assert ditbench_main(["run", *argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_cli_preset_choices_come_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        ditbench_main(["run", "--preset", "nope"])
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "'smoke'" in err and "'default'" in err


def test_timer_reports_median_and_iqr_of_a_known_delay():
    timing = time_call(lambda: time.sleep(0.002), threads=1, min_run_time=0.01, min_repeats=4)
    assert timing.repeats >= 4 and timing.calls_per_block >= 1
    # sleep never returns early; scheduler delay on a loaded 2-core box can add a few ms.
    assert 0.002 <= timing.median_s < 0.05 and 0 <= timing.iqr_s < 0.05
    with pytest.raises(ValueError, match="allowed values"):
        time_call(lambda: None, threads=1, min_run_time=0.01, method="stopwatch")


def test_cpu_peak_memory_sees_a_known_allocation():
    size = 64 * 2**20  # 64 MiB, written so that every page is resident
    out, peak, method = measure_peak(lambda: torch.ones(size // 4, dtype=torch.float32), "cpu")
    if method == "unavailable":
        pytest.skip("no resettable VmHWM on this platform")
    assert method == "vmhwm" and out.numel() == size // 4
    # At least the tensor; at most the tensor plus allocator slack (pages are 4 KiB; 8 MiB is generous).
    assert size <= peak <= size + 8 * 2**20
    del out
    _, small, _ = measure_peak(lambda: torch.ones(16), "cpu")  # the reset really resets
    assert small < 8 * 2**20
