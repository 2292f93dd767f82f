"""The runner end to end: smoke preset, skips (unsupported, cost model, no CUDA), failures
(exception, crash, timeout) through the worker, resume after an interruption, metadata."""
from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch

import fake_kernels  # registers the fake_* kernels in this process
from ditbench.measure import (
    COLUMNS, REQUIRED_COLUMNS, InProcessExecutor, Preset, SweepSpec, WorkerExecutor, get_preset, load_config,
    read_results, run_sweep,
)
from ditbench.measure.budget import Rates
from tolerances import assert_close, gamma, softmax_rounding_bound

RATES = Rates(flops_per_s=1e9, method="assumed")  # fixed, so skips do not depend on machine load


def gamma_of(counts: pd.Series, dtype: torch.dtype) -> np.ndarray:
    """Higham's γ_c for each count c."""
    return np.array([gamma(int(c), dtype) for c in counts])


def preset(*sweeps: dict, name: str = "t") -> Preset:
    base = {"experiment": "T", "n": [32], "d": [4], "min_run_time": 0.001, "min_repeats": 2}
    return Preset(name=name, specs=tuple(SweepSpec.from_dict(base | s) for s in sweeps))


def run(p: Preset, out, **kwargs):
    kwargs.setdefault("executor", InProcessExecutor())
    kwargs.setdefault("rates", RATES)
    return run_sweep(p, out, threads=1, progress=False, **kwargs)


@pytest.mark.slow
def test_smoke_preset_in_process(tmp_path):
    frame = run(get_preset("smoke"), tmp_path)
    assert list(frame.columns) == list(COLUMNS) and set(REQUIRED_COLUMNS) <= set(frame.columns)
    assert (frame["status"] == "ok").all(), frame[["kernel", "n", "reason"]]
    assert len(frame) == 4 * 4 and frame["case_id"].is_unique
    exact = frame[frame["kernel"].isin(["exact", "sdpa"])]
    # Worst-case rounding of a float32 softmax average (flash: one rescaling per key at worst) plus
    # the float64 reference's, from the row's sizes: entries in [−B, B] give logits of reach s·d·B².
    for r in exact.itertuples():
        v_max = r.err_max / r.err_max_rel  # err_max_rel divides by ‖V‖_max
        tol = sum(softmax_rounding_bound(r.m, r.d, r.scale * r.d * r.bound**2, v_max, dtype, rescales=rescales)
                  for dtype, rescales in ((torch.float32, r.m if r.kernel == "sdpa" else 0), (torch.float64, 0)))
        assert_close(r.err_max, 0.0, atol=tol, what=f"{r.kernel} n={r.n}")
    uniform = frame[frame["kernel"] == "uniform"]
    # The uniform kernel *is* the uniform baseline (float64 mean of the same V) up to the float32
    # mean's rounding, γ_{m+1}·‖V‖_max in each precision, relative to err_uniform.
    gap = (gamma_of(uniform["m"] + 1, torch.float32) + gamma_of(uniform["m"] + 1, torch.float64)) \
        * (uniform["err_max"] / uniform["err_max_rel"]) / uniform["err_uniform"]
    assert_close(uniform["err_vs_uniform"], np.ones(len(uniform)), atol=gap, what="uniform err_vs_uniform")
    assert (frame["median_s"] > 0).all() and (frame["repeats"] >= 3).all() and (frame["threads"] == 1).all()
    assert (frame["ref_rows"] == frame["n"].clip(upper=1024)).all() and (frame["bound_spec"] == "1").all()
    assert set(frame["mem_method"]) <= {"vmhwm", "unavailable"}
    meta = json.loads((tmp_path / "meta.json").read_text())
    for key in ("torch", "python", "numpy", "cpu_model", "threads", "git_commit", "preset", "start_time",
                "end_time", "hostname", "gpu_model"):
        assert key in meta
    assert meta["preset"]["name"] == "smoke" and meta["end_time"] and meta["status_counts"] == {"ok": 16}


def test_skips_unsupported_over_budget_and_missing_cuda(tmp_path):
    frame = run(preset({"kernels": ["fake_small_only", "fake_huge"], "n": [32, 128]}), tmp_path)
    rows = {(r.kernel, r.n): r for r in frame.itertuples()}
    assert rows["fake_small_only", 32].status == "ok"
    assert rows["fake_small_only", 128].status == "skipped"
    assert rows["fake_small_only", 128].reason == "fake_small_only supports n ≤ 64, not n=128"
    huge = rows["fake_huge", 32]
    assert huge.status == "skipped" and "exceeds the time budget" in huge.reason and "memory budget" in huge.reason
    assert math.isnan(huge.median_s)  # never measured: empty, not a made-up number
    if not torch.cuda.is_available():
        frame = run(preset({"kernels": ["uniform"]}), tmp_path / "gpu", device="cuda")
        assert frame["status"].tolist() == ["skipped"] and "torch.cuda.is_available() is False" in frame["reason"][0]


@pytest.mark.slow
def test_kernel_exception_crash_and_timeout_become_failed_rows_and_the_run_goes_on(tmp_path, monkeypatch):
    # The crash comes before the last ok case (so the run must restart the worker and go on); the
    # timeout comes last, so the test pays for only one restart (workers restart lazily).
    p = preset({"kernels": ["fake_raises", "fake_segfault", "fake_nan", "uniform"]},
               {"kernels": ["fake_slow"], "n": [32, 64], "timeout_s": 3})
    fake_kernels.worker_path(monkeypatch)
    with WorkerExecutor(imports=(fake_kernels.MODULE,)) as executor:
        frame = run(p, tmp_path, executor=executor)
        assert executor.restarts == 2  # killed after the crash and after the timeout
    rows = {r.kernel: r for r in frame.itertuples() if r.n == 32}
    assert rows["fake_raises"].status == "failed"
    assert rows["fake_raises"].reason.startswith("RuntimeError: fake kernel refuses on purpose (at fake_kernels.py:")
    assert rows["fake_segfault"].status == "failed" and "SIGSEGV" in rows["fake_segfault"].reason
    # The 600 s sleeper was killed (its worker restarted, the row says so), not waited for.
    assert rows["fake_slow"].status == "failed" and rows["fake_slow"].reason.startswith("timeout after 3 s")
    larger = frame[(frame["kernel"] == "fake_slow") & (frame["n"] == 64)].iloc[0]
    assert larger.status == "skipped" and larger.reason == "n=32 of this setting timed out; a larger n would too"
    nan = rows["fake_nan"]
    assert nan.status == "ok" and nan.nonfinite == 1 and nan.err_max == math.inf and "non-finite" in nan.reason
    u = rows["uniform"]  # the uniform kernel is the baseline up to its float32 mean (as in the smoke test)
    gap = (gamma(u.m + 1, torch.float32) + gamma(u.m + 1)) * (u.err_max / u.err_max_rel) / u.err_uniform
    assert u.status == "ok" and u.err_vs_uniform <= 1 + gap
    ok = frame["status"] == "ok"
    assert frame.loc[~ok, "median_s"].isna().all() and frame.loc[ok, "median_s"].notna().all()


class InterruptAfter(InProcessExecutor):
    """Stops the run (like Ctrl-C) after ``count`` measured points."""

    def __init__(self, count: int) -> None:
        self.count = count

    def run(self, case):
        if self.count == 0:
            raise KeyboardInterrupt
        self.count -= 1
        return super().run(case)


@pytest.mark.slow
def test_resume_after_interruption_finishes_without_duplicates(tmp_path):
    p = preset({"kernels": ["exact", "uniform", "fake_small_only"], "n": [16, 32, 64, 128]})
    with pytest.raises(KeyboardInterrupt):
        run(p, tmp_path, executor=InterruptAfter(3))
    partial = read_results(tmp_path / "results.csv")
    assert len(partial) == 3 and json.loads((tmp_path / "meta.json").read_text())["end_time"]
    with open(tmp_path / "results.csv", "a") as fh:
        fh.write("T,exact,forw")  # a row cut off mid-write by a kill
    with pytest.raises(ValueError, match="pass --resume"):
        run(p, tmp_path)
    frame = run(p, tmp_path, resume=True)
    assert len(frame) == 12 and frame["case_id"].is_unique
    # Rows already recorded are kept as they were (dtypes may widen once later rows fill a column).
    pd.testing.assert_frame_equal(frame.iloc[:3], partial, check_dtype=False)
    assert set(frame["status"]) == {"ok", "skipped"}  # fake_small_only at n = 128
    again = run(p, tmp_path, resume=True)  # nothing left to do
    assert again.equals(frame)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["cases_already_done"] == 12 and len(meta["previous_runs"]) == 2


def test_bad_spec_fails_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="unknown kernel 'missing'"):
        run(preset({"kernels": ["uniform"]}, {"kernels": ["missing"]}), tmp_path)
    assert not (tmp_path / "results.csv").exists() and not (tmp_path / "meta.json").exists()


def dense_gradient(a1, a2, a3, x, y, e, *, scale=None):
    """dL/dX by the closed form of DESIGN §3.2, materialising n×n (small n only); any dtype."""
    s = 1.0 / math.sqrt(a1.shape[-1]) if scale is None else scale
    f = torch.softmax(s * a1 @ x @ a2.T, dim=-1)  # (n, n)
    h = a3 @ y  # (n, d)
    q = (f @ h - e) @ h.T  # (n, n)
    p1 = f * q  # (n, n)
    p = p1 - p1.sum(dim=-1, keepdim=True) * f  # (n, n)
    return s * a1.T @ p @ a2  # (d, d)


def test_backward_op_uses_the_exact_gradient_reference(tmp_path, monkeypatch):
    from ditbench.attention import KERNELS, Kernel
    from ditbench.measure.families import attention

    monkeypatch.setitem(KERNELS, "fake_grad", Kernel(name="fake_grad", fn=dense_gradient, op="backward"))
    p = preset({"kernels": ["fake_grad"], "op": "backward", "n": [16, 32], "bound": [2], "dtype": ["float64"]})
    # The reference is the attention family's exact_gradient: swapped for the same dense formula.
    monkeypatch.setattr(attention, "exact_gradient", dense_gradient)
    frame = run(p, tmp_path / "ok")
    assert (frame["status"] == "ok").all(), frame["reason"].tolist()
    # Same float64 computation on both sides: bit-identical.
    assert (frame["err_max"] == 0).all() and (frame["err_uniform"] > 0).all()
    assert (frame["ref_rows"] == 4).all()  # the (d, d) gradient is compared whole


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_a_complete_table(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    config = tmp_path / "kill.toml"
    config.write_text('[[sweep]]\nexperiment = "K"\nkernels = ["exact", "uniform"]\n'
                      'n = {start = 16, stop = 256, factor = 2}\nd = 4\nmin_run_time = 0.2\nmin_repeats = 1\n')
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "ditbench", "run", "--config", str(config), "--out", str(out), "--threads", "1",
            "--executor", "in-process", "--quiet", "--no-report"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.read_text().count("\n") >= 3:  # header + 2 rows: mid-run
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_results(results)
    assert 2 <= len(partial) < 10  # each point takes ≥ 0.2 s: the kill landed mid-run
    # Timing settings are not part of a case's identity: finish quickly with a shorter min_run_time.
    quick = tuple(dataclasses.replace(s, min_run_time=0.001) for s in load_config(config).specs)
    frame = run(Preset(name="kill", specs=quick), out, resume=True)
    assert len(frame) == 10 and frame["case_id"].is_unique and (frame["status"] == "ok").all()
