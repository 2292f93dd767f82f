"""The executor contract and the runner's policy: batches within capacity, results in any order,
the structured ``failure`` column driving the timeout rule, per-worker machine fields, budget
figures and calibration on every row and in meta.json."""
from __future__ import annotations

import json
import math
from collections import Counter

import pandas as pd
import pytest

import fake_kernels  # noqa: F401  (registers the fake_* kernels in this process)
from ditbench.measure import InProcessExecutor, Preset, SweepSpec, run_sweep
from ditbench.measure.budget import Rates
from ditbench.measure.executor import Executor
from ditbench.measure.machine import probe
from ditbench.measure.point import base_row, finish
from ditbench.measure.results import FAILURES
from ditbench.measure.runner import TimeoutRule, plan, setting_of, take_next

RATES = Rates(flops_per_s=1e9, method="assumed")


def preset(*sweeps: dict, name: str = "t") -> Preset:
    base = {"experiment": "X", "n": [32], "d": [4], "min_run_time": 0.001, "min_repeats": 2}
    return Preset(name=name, specs=tuple(SweepSpec.from_dict(base | s) for s in sweeps))


class EagerFake(Executor):
    """An eager engine: runs nothing, takes whole batches, answers the oldest case first, and "times
    out" kernel ``uniform`` at n = 32 (any wording). Records what was in flight at each submit."""

    name = "eager-fake"

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self.in_flight_peak = 0
        self.submitted: list = []

    @property
    def capacity(self) -> int:
        return self._capacity

    def start(self, rates=None) -> None:
        self._queue: list = []
        self.machine = probe("cpu", 1, rates=rates, worker="fake")

    def submit(self, cases) -> None:
        self._queue.extend(cases)
        self.submitted.append([(c.kernel, c.n) for c in cases])
        self.in_flight_peak = max(self.in_flight_peak, len(self._queue))

    def completed(self):
        while self._queue:
            case = self._queue.pop(0)
            stamp = self.machine.row_fields()
            if case.kernel == "uniform" and case.n == 32:
                row = finish(base_row(case), "failed", "worded any way at all", failure="timeout", **stamp)
            else:
                row = finish(base_row(case), "failed", "fake engine measures nothing", failure="error", **stamp)
            yield case, row

    def machines(self):
        return [self.machine]


def test_runner_keeps_capacity_and_applies_the_timeout_rule_to_an_eager_engine(tmp_path):
    p = preset({"kernels": ["uniform", "exact", "fake_small_only"], "n": [32, 64, 128, 256]})
    executor = EagerFake(capacity=3)
    frame = run_sweep(p, tmp_path, threads=1, executor=executor, progress=False, rates=RATES)
    assert executor.in_flight_peak <= 3
    # One case per setting at a time while other settings have work: the first batch is one n of each kernel.
    assert sorted(executor.submitted[0]) == [("exact", 32), ("fake_small_only", 32), ("uniform", 32)]
    rows = {(r.kernel, r.n): r for r in frame.itertuples()}
    assert len(frame) == 12 and frame["case_id"].is_unique
    for n in (64, 128, 256):  # uniform timed out at 32 → every larger n skipped, never submitted
        assert rows["uniform", n].status == "skipped" and rows["uniform", n].failure == "after-timeout"
        assert rows["uniform", n].reason == "n=32 of this setting timed out; a larger n would too"
    assert all(rows["exact", n].failure == "error" for n in (32, 64, 128, 256))  # no rule for errors
    assert rows["fake_small_only", 128].failure == "unsupported"
    submitted = Counter(k for batch in executor.submitted for k, _ in batch)
    assert submitted == {"uniform": 1, "exact": 4, "fake_small_only": 2}
    assert set(frame["failure"]) <= set(FAILURES)  # every row here is not ok


def test_timeout_rule_reads_the_failure_column_not_the_reason():
    (small,) = plan(preset({"kernels": ["uniform"], "n": [32]}), threads=1)
    (large,) = plan(preset({"kernels": ["uniform"], "n": [64]}), threads=1)
    (other,) = plan(preset({"kernels": ["exact"], "n": [64]}), threads=1)
    rule = TimeoutRule()
    rule.observe(small, {"status": "failed", "reason": "timeout after 3 s", "failure": "error"})
    assert rule.reason(large) is None  # the words "timeout" alone mean nothing
    rule.observe(small, {"status": "failed", "reason": "", "failure": "timeout"})
    assert rule.reason(large) == "n=32 of this setting timed out; a larger n would too"
    assert rule.reason(small) is None and rule.reason(other) is None
    assert setting_of(small) == setting_of(large) != setting_of(other)
    # With passes, the other passes of the point that timed out are skipped too.
    first, again = plan(preset({"kernels": ["uniform"], "n": [32], "passes": 2}), threads=1)
    rule.observe(first, {"status": "failed", "reason": "", "failure": "timeout"})
    assert rule.reason(again) == "n=32 of this setting timed out in another pass; this one would too"


def test_take_next_prefers_settings_with_nothing_in_flight():
    cases = plan(preset({"kernels": ["uniform", "exact"], "n": [32, 64]}), threads=1)
    pending = list(cases)  # uniform 32, uniform 64, exact 32, exact 64
    running: Counter = Counter({setting_of(cases[0]): 1})  # uniform 32 running
    assert take_next(pending[1:], running) == cases[2]
    assert take_next(pending[1:2], running) == cases[1]  # nothing else to do: the next n goes anyway


def test_rows_carry_machine_calibration_and_budget_figures(tmp_path):
    p = preset({"kernels": ["uniform", "fake_huge", "fake_raises"], "n": [32]})
    frame = run_sweep(p, tmp_path, threads=1, executor=InProcessExecutor(), progress=False)  # calibrates
    meta = json.loads((tmp_path / "meta.json").read_text())
    (machine,) = meta["machines"]
    assert machine["rate_method"] == "measured" and len(machine["rate_samples"]) == meta["calibration"]["repeats"]
    assert machine["rate_flops_per_s"] == sorted(machine["rate_samples"])[len(machine["rate_samples"]) // 2]
    assert machine["rate_spread"] >= 1 and machine["worker"] == "in-process" and machine["threads"] == 1
    rows = {r.kernel: r for r in frame.itertuples()}
    for row in rows.values():  # every row that reached a worker names its machine and the rate it used
        assert row.machine == machine["label"] and row.host == machine["hostname"] and row.torch_version
        assert row.cpu_model == machine["cpu_model"] and row.worker == "in-process"
        assert row.rate_flops_per_s == machine["rate_flops_per_s"] and row.rate_method == "measured"
    huge = rows["fake_huge"]
    assert huge.status == "skipped" and huge.failure == "budget"
    # The decision is reproducible from the row: predicted_s > time_budget_s, need > limit.
    assert huge.predicted_s == pytest.approx(1e30 / huge.rate_flops_per_s) and huge.predicted_s > huge.time_budget_s
    assert huge.memory_need_bytes > huge.memory_limit_bytes
    ok = rows["uniform"]
    assert ok.status == "ok" and pd.isna(ok.failure) and ok.predicted_s <= ok.time_budget_s
    assert ok.memory_need_bytes <= ok.memory_limit_bytes and math.isfinite(ok.memory_limit_bytes)
    assert rows["fake_raises"].failure == "error"


def test_store_refuses_an_unknown_failure(tmp_path):
    from ditbench.measure import ResultStore

    (case,) = plan(preset({"kernels": ["uniform"]}), threads=1)
    store = ResultStore(tmp_path / "results.csv")
    with pytest.raises(ValueError, match="failure 'mystery' must be one of"):
        store.append(finish(base_row(case), "failed", "?", failure="mystery"))
    store.append(finish(base_row(case), "ok"))


def test_fits_and_report_series_never_pool_two_machines():
    """Two machines measuring one kernel with different laws (t ∝ n on one, t ∝ n² on the other,
    with per-row budget figures that differ row by row): one fit and one series per machine."""
    import numpy as np

    from ditbench.fit import default_group_columns, fit_table
    from ditbench.report.select import series_columns

    sizes = np.array([256, 512, 1024, 2048, 4096, 8192])
    rows = []
    for machine, power in (("a · AMD EPYC", 1.0), ("b · Intel Xeon", 2.0)):
        for n in sizes:
            rows.append({"experiment": "E1", "kernel": "exact", "op": "forward", "n": int(n), "d": 8,
                         "status": "ok", "median_s": 1e-9 * float(n) ** power, "machine": machine,
                         "rate_flops_per_s": 1e9 + n, "predicted_s": 1e-6 * n, "worker": f"tcp://{machine[0]}:1",
                         "cpu_model": machine[4:], "memory_limit_bytes": 1e10 - n})
    frame = pd.DataFrame(rows)
    keys = default_group_columns(frame)
    assert "machine" in keys and not {"rate_flops_per_s", "predicted_s", "worker", "cpu_model"} & set(keys)
    fits = fit_table(frame).set_index("machine")
    assert fits.loc["a · AMD EPYC", "exponent"] == pytest.approx(1.0, abs=1e-6)
    assert fits.loc["b · Intel Xeon", "exponent"] == pytest.approx(2.0, abs=1e-6)
    assert "machine" in series_columns(frame)
    assert "machine" not in series_columns(frame[frame["machine"] == "a · AMD EPYC"])  # one machine: no split
