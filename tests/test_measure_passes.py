"""Designs (issue 11): interleaved passes in shuffled order, short runs at small n, per-block
samples and warm-up timings in the rows; the float64 reference in every point's prediction and a
sampled-row reference for large-n gradients (issue 15, item 2)."""
from __future__ import annotations

import json
import sys
import time

import pytest
import torch

import fake_kernels  # noqa: F401  (registers the fake_* kernels in this process)
from ditbench.fit import fit_table
from ditbench.gradient import exact_gradient
from ditbench.measure import InProcessExecutor, Preset, SweepSpec, WorkerExecutor, expand, run_sweep
from ditbench.measure.budget import Rates, budget_fields, budget_reasons
from ditbench.measure.cases import run_time
from ditbench.measure.drift import REFERENCE
from ditbench.measure.families.attention import (backward_check, backward_inputs, reference_key, row_subproblem,
                                                 sampled_gradient)
from ditbench.measure.point import base_row
from ditbench.measure.memory import heap_policy
from ditbench.measure.runner import plan
from ditbench.measure.spec import RunDefaults
from ditbench.measure.timing import time_call
from tolerances import assert_close, gamma

RATES = Rates(flops_per_s=1e9, method="assumed")


def spec(**kw) -> SweepSpec:
    return SweepSpec.from_dict({"experiment": "P", "kernels": ["exact"], "n": [16, 32, 64], "d": [4],
                                "min_run_time": 0.001, "min_repeats": 2} | kw)


def test_passes_are_interleaved_in_a_seeded_shuffled_order():
    p = Preset(name="p", specs=(spec(passes=3),))
    cases = plan(p, threads=1)
    assert [c.pass_index for c in cases] == [0] * 3 + [1] * 3 + [2] * 3
    assert len({c.case_id for c in cases}) == 9 and [c.case_id for c in plan(p, threads=1)] == [
        c.case_id for c in cases]  # reproducible
    # Pass 0 keeps the id a single-pass run gives the same point; later passes share its reference.
    single = {c.case_id for c in plan(Preset(name="p", specs=(spec(),)), threads=1)}
    assert {c.case_id for c in cases if c.pass_index == 0} == single
    assert len({reference_key(c) for c in cases}) == 3  # every pass of a point shares its reference
    orders = {tuple(c.n for c in cases[i:i + 3]) for i in (0, 3, 6)}
    assert len(orders) > 1  # shuffled differently in different passes (seeded)


def test_pass_blocks_visit_each_setting_back_to_back():
    # order = "blocks": within a pass, each setting's sizes one after the other (shuffled), the
    # settings in shuffled order; every point still once per pass.
    p = Preset(name="p", specs=(spec(passes=3, kernels=["exact", "sdpa"], n=[16, 32, 64, 128]),),
               defaults=RunDefaults(order="blocks"))
    cases = plan(p, threads=1)
    assert len(cases) == 24 and [c.pass_index for c in cases] == [0] * 8 + [1] * 8 + [2] * 8
    runs = [[c.kernel for c in cases[i:i + 4]] for i in range(0, 24, 4)]
    assert all(len(set(r)) == 1 for r in runs)  # blocks of one kernel
    assert {tuple(c.n for c in cases[i:i + 4]) for i in range(0, 24, 4)} != {(16, 32, 64, 128)}  # shuffled
    assert {c.case_id for c in cases} == {c.case_id for c in plan(Preset(name="p", specs=p.specs), threads=1)}
    with pytest.raises(ValueError, match="order"):
        RunDefaults(order="sorted")


def test_min_run_time_shrinks_at_small_n():
    s = spec(min_run_time=0.2, min_run_time_n=1024)
    assert run_time(s, 4096) == 0.2 and run_time(s, 512) == 0.1 and run_time(s, 16) == 0.02
    assert [c.min_run_time for c in expand(s, threads=1)] == [0.02, 0.02, 0.02]


def test_a_sweep_may_pin_its_thread_count_and_its_rows_record_it(tmp_path):
    pinned, free = spec(experiment="A", threads=1, n=[16, 32]), spec(experiment="B", n=[16, 32])
    assert {c.threads for c in expand(pinned, threads=2)} == {1} and {c.threads for c in expand(free, threads=2)} == {2}
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"threads=.* must be an integer ≥ 1"):
            spec(threads=bad)
    frame = run_sweep(Preset(name="p", specs=(pinned, free)), tmp_path, threads=2, progress=False,
                      executor=InProcessExecutor(), rates=RATES)
    assert frame.groupby("experiment")["threads"].agg(set).to_dict() == {"A": {1}, "B": {2}}


def test_rows_carry_samples_warmup_and_pass_and_the_fit_uses_them(tmp_path):
    p = Preset(name="p", specs=(spec(passes=2, n=[16, 32, 64, 128]),))
    frame = run_sweep(p, tmp_path, threads=1, progress=False, executor=InProcessExecutor(), rates=RATES)
    assert (frame["status"] == "ok").all() and sorted(frame["pass_index"].unique()) == [0, 1]
    for row in frame.itertuples():
        samples = json.loads(row.samples)
        assert len(samples) == row.repeats and min(samples) > 0
        # A first visit always warms up; a later one only when its call is below min_run_time
        # (else its first call is timed: test_a_later_visit_whose_one_call_fills_a_block_...).
        assert row.warmup_s > 0 if row.pass_index == 0 else (row.warmup_s > 0 or row.calls_per_block == 1)
    assert (frame["ref_s"] >= 0).all()  # pass 1 reuses the reference of pass 0 (≈ 0 s)
    assert (frame["drift_ref_s"] > 0).all()  # the drift reference around every point's timed blocks
    fits = fit_table(frame)
    assert len(fits) == 1 and fits["points"].iloc[0] == 4
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["drift_reference"]["name"] == REFERENCE.name and meta["drift_reference"]["version"] == REFERENCE.version


def test_the_reference_is_part_of_the_prediction():
    # A cheap kernel (uniform) whose float64 reference alone exceeds the point's timeout is skipped, with
    # the reference named in the reason.
    [case] = expand(spec(kernels=["uniform"], n=[1 << 15], ref_rows=1 << 15, timeout_s=1.0), threads=1)
    reasons = budget_reasons(case, Rates(flops_per_s=1e10, method="assumed"), memory_available=1e15)
    assert any("float64 reference" in r and "timeout" in r for r in reasons), reasons
    [small] = expand(spec(kernels=["uniform"], n=[1 << 15], ref_rows=64, timeout_s=1.0), threads=1)
    assert budget_reasons(small, Rates(flops_per_s=1e10, method="assumed"), 1e15) == []
    # The decision is reproducible from the row's own columns.
    for c, skipped in ((case, True), (small, False)):
        row = base_row(c) | budget_fields(c, Rates(flops_per_s=1e10, method="assumed"), 1e15)
        point_s = (row["predicted_ref_flops"] / row["rate_flops_per_s"]
                   + row["predicted_s"] * (2 + row["min_repeats"]) + row["min_run_time"])
        assert row["predicted_point_s"] == point_s and (point_s > row["timeout_s"]) == skipped


def test_sampled_gradient_equals_the_closed_form_with_other_rows_zeroed():
    gen = torch.Generator().manual_seed(3)
    n, d = 200, 4
    a1, a2, a3, e = ((torch.rand(n, d, generator=gen, dtype=torch.float64) * 2 - 1) for _ in range(4))
    x = torch.eye(d, dtype=torch.float64) + 0.1 * torch.rand(d, d, generator=gen, dtype=torch.float64)
    y = torch.rand(d, d, generator=gen, dtype=torch.float64)
    rows = torch.tensor([0, 7, 64, 199])
    zeroed = torch.zeros_like(a1)
    zeroed[rows] = a1[rows]
    full = exact_gradient(zeroed, a2, a3, x, y, e, scale=0.3)  # (d, d)
    sub = sampled_gradient(a1[rows], a2, a3, x, y, e[rows], scale=0.3, block=3)  # (d, d)
    # Same float64 sums in a different order: each entry within γ_depth of the same computation on
    # magnitudes (Higham §3.1), depth ≤ 8n chained roundings (softmax, three length-n products, d-sums).
    assert_close(sub, full, atol=gamma(8 * n) * _magnitude(a1[rows], a2, a3, x, y, e[rows], 0.3), rtol=0)


def _magnitude(a1s, a2, a3, x, y, es, scale):
    """Entry-wise s·|A1_S|ᵀ·(|p1| + |Σp1|·f)·|A2| with |p1| ≤ f∘(|c|·|h|ᵀ), |c| ≤ f|h| + |E|: the sum of
    the absolute values of every term of the closed form's dL/dX (the scale of its rounding error)."""
    h = (a3 @ y).abs()  # (n, d)
    f = torch.softmax(scale * (a1s @ x) @ a2.T, dim=-1)  # (r, n)
    c = f @ h + es.abs()  # (r, d)
    p1 = f * (c @ h.T)  # (r, n)
    p = p1 + p1.sum(dim=-1, keepdim=True) * f  # (r, n)
    return float((abs(scale) * a1s.abs().T @ (p @ a2.abs())).max())  # dL/dX = s·A1ᵀ p A2


def test_large_n_gradient_is_scored_on_the_row_subsampled_problem():
    [case] = expand(SweepSpec.from_dict({
        "experiment": "G", "op": "backward", "kernels": ["exact_gradient"], "n": [256], "d": [4],
        "bound": [0.5], "ref_rows": 32, "dtype": ["float64"]}), threads=1)
    inputs = backward_inputs(case)
    check = backward_check(case, inputs)
    rows = check.subproblem_rows
    assert rows is not None and 32 <= rows.numel() <= 33
    sub = row_subproblem(inputs, rows)
    a1 = sub[0]
    kept = (a1.abs().sum(dim=1) > 0).sum()
    assert int(kept) == rows.numel()
    # The row of largest ‖A1X‖ is kept: the sub-problem has the timed problem's logit radius.
    assert torch.linalg.vector_norm(a1, dim=1).max() == torch.linalg.vector_norm(inputs[0], dim=1).max()
    out = exact_gradient(*sub, scale=case.scale)  # what the kernel's score compares
    a1f, a2f, a3f, xf, yf, ef = (t.to(torch.float64) for t in sub)
    assert_close(out, check.reference, rtol=0,
                 atol=gamma(8 * case.n) * _magnitude(a1f[rows], a2f, a3f, xf, yf, ef[rows], case.scale))


def test_a_warm_up_that_fills_min_run_time_replaces_the_block_size_estimate():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.004)

    # The caller's warm-up took ≥ min_run_time: exactly min_repeats single-call blocks, no extra
    # untimed estimate call (blocked_autorange would spend one).
    timing = time_call(fn, threads=1, min_run_time=0.004, min_repeats=3, warmup_s=0.004)
    assert timing.calls_per_block == 1 and timing.repeats == len(calls) == len(timing.samples) == 3
    assert min(timing.samples) >= 0.004
    # Blocks of one call continue until they fill min_run_time.
    calls.clear()
    timing = time_call(fn, threads=1, min_run_time=0.03, min_repeats=1, warmup_s=0.05)
    assert timing.repeats == len(calls) and sum(timing.samples) >= 0.03 and timing.repeats >= 2
    # A warm-up shorter than min_run_time: the Timer's own estimate (blocks of several calls).
    timing = time_call(lambda: None, threads=1, min_run_time=0.01, min_repeats=2, warmup_s=1e-6)
    assert timing.calls_per_block > 1


@pytest.mark.slow  # starts a worker interpreter (conftest)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt and getrusage faults: Linux")
def test_worker_heap_policy_and_fault_counts_reach_the_rows(tmp_path):
    # The worker process fixes glibc's heap policy before it measures; the in-process executor
    # (tests, debugging) keeps glibc's adaptive default. (How many faults the policy saves depends
    # on the kernel's allocation pattern: figures in docs/measure.md.)
    p = Preset(name="p", specs=(spec(n=[16, 32, 64]),))
    for executor, policy in ((WorkerExecutor(), "fixed"), (InProcessExecutor(), heap_policy())):
        with executor:
            frame = run_sweep(p, tmp_path / policy, threads=1, progress=False, executor=executor, rates=RATES)
        assert (frame["status"] == "ok").all() and (frame["faults_per_call"] >= 0).all()
        assert set(frame["heap_policy"]) == {policy}


@pytest.mark.slow  # ≈ 17 s loaded: a polynomial sweep in process
def test_later_passes_reuse_the_points_guarantee(tmp_path, monkeypatch):
    # The polynomial kernel's describe hook (degree, rank, err_bound, the float64 rounding bound on
    # the checked rows) runs once per point: every pass sees the same seeded inputs, so later
    # passes carry the same values without recomputing them.
    import ditbench.measure.families.attention as attention

    calls: list[tuple[int, object]] = []
    inner = attention.realised

    def counting(case, inputs, rows):
        calls.append((case.n, case.pass_index))
        return inner(case, inputs, rows)

    monkeypatch.setattr(attention, "realised", counting)
    monkeypatch.setattr(attention, "_REALISED", type(attention._REALISED)())
    p = Preset(name="p", specs=(spec(passes=3, kernels=["polynomial"], n=[64, 128], params={"eps": [1e-2]},
                                     ref_rows=16),))
    frame = run_sweep(p, tmp_path, threads=1, progress=False, executor=InProcessExecutor(), rates=RATES)
    assert (frame["status"] == "ok").all() and len(frame) == 6
    assert sorted(n for n, _ in calls) == [64, 128]  # once per point, not once per pass
    for column in ("degree", "rank", "rounding_bound", "err_bound", "poly_radius"):
        assert frame.groupby("n")[column].nunique().eq(1).all(), column  # every pass the same values
    assert frame["rounding_bound"].notna().all()


def test_later_passes_reuse_the_points_peak_and_subproblem_error(tmp_path, monkeypatch):
    # Peak memory (a heap trim and a high-water-mark reset) and the error on the row-subsampled
    # problem (a second kernel call on every key) are properties of the point: measured at its
    # first visit, repeated by its later passes, whose warm-up is then a plain call.
    import ditbench.measure.families.attention as attention
    import ditbench.measure.point as point

    peaks: list[int] = []
    subcalls: list[int] = []
    inner_peak, inner_rows = point.measure_peak, attention.row_subproblem

    def counting_peak(fn, device):
        peaks.append(1)
        return inner_peak(fn, device)

    def counting_rows(inputs, rows):
        subcalls.append(int(rows.numel()))
        return inner_rows(inputs, rows)

    monkeypatch.setattr(point, "measure_peak", counting_peak)
    monkeypatch.setattr(point, "_VISITED", type(point._VISITED)())
    monkeypatch.setattr(attention, "row_subproblem", counting_rows)
    monkeypatch.setattr(attention, "_SUBSCORES", type(attention._SUBSCORES)())
    monkeypatch.setattr(attention, "_CHECKS", type(attention._CHECKS)())
    p = Preset(name="p", specs=(spec(passes=3, op="backward", kernels=["exact_gradient"], n=[32, 64], ref_rows=8,
                                     min_run_time=0.05),))
    frame = run_sweep(p, tmp_path, threads=1, progress=False, executor=InProcessExecutor(), rates=RATES)
    assert (frame["status"] == "ok").all() and len(frame) == 6
    # Once per point, not once per pass: the sub-problem is built for each point's float64
    # reference and for the kernel's scoring call (8 without the reuse: 2 references + 6 visits).
    assert len(peaks) == 2 and len(subcalls) == 4
    assert (frame["ref_rows"] < frame["n"]).all()  # scored on the sub-problem
    for column in ("peak_bytes", "err_max", "err_fro_rel", "ref_rows"):
        assert frame.groupby("n")[column].nunique(dropna=False).eq(1).all(), column
    assert frame["warmup_s"].gt(0).all()  # calls (≈ 1 ms) far below min_run_time: every visit warms up


def test_a_later_visit_whose_one_call_fills_a_block_times_its_first_call(tmp_path, monkeypatch):
    # Pass 0 warms up (and measures the peak); a later pass of a point whose first visit's call
    # filled min_run_time makes no warm-up: its first call is timed and its output scored, so the
    # visit costs its timed calls only. Errors and peak are the point's, in every pass.
    import ditbench.measure.point as point

    monkeypatch.setattr(point, "_VISITED", type(point._VISITED)())
    fake_kernels.NAPS.clear()
    p = Preset(name="p", specs=(spec(passes=3, kernels=["fake_napping"], n=[16, 32], min_run_time=0.005,
                                     min_repeats=1),))
    frame = run_sweep(p, tmp_path, threads=1, progress=False, executor=InProcessExecutor(), rates=RATES)
    assert (frame["status"] == "ok").all() and len(frame) == 6
    first, later = frame[frame["pass_index"] == 0], frame[frame["pass_index"] > 0]
    assert first["warmup_s"].ge(fake_kernels.NAP_S).all() and later["warmup_s"].isna().all()
    assert (later["calls_per_block"] == 1).all() and (later["repeats"] == 1).all()
    assert min(min(json.loads(s)) for s in later["samples"]) >= fake_kernels.NAP_S
    # Calls: pass 0 = warm-up + its timed calls; later passes = their timed calls, nothing else.
    assert len(fake_kernels.NAPS) == len(first) + int((frame["repeats"] * frame["calls_per_block"]).sum())
    for column in ("peak_bytes", "err_max", "err_fro_rel"):
        assert frame.groupby("n")[column].nunique(dropna=False).eq(1).all(), column
    assert frame["drift_ref_s"].notna().all()
