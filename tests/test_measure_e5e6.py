"""E5 (latent DiT workloads) and E6 (peers) in the measurement engine: per-kernel parameter
tables, the non-softmax target columns, dit cases (ok rows with errors, refusals as skips), presets."""
from __future__ import annotations

import json
import math

import pytest
import torch

import fake_kernels  # noqa: F401  (registers the fake_* kernels in this process)
from ditbench.attention import KERNELS
from ditbench.measure import (
    InProcessExecutor, Preset, SweepSpec, check_spec, dump_toml, expand, get_preset, load_preset_text, run_sweep,
)
from ditbench.measure.budget import Rates
from ditbench.measure.point import measure_case
from ditbench.measure.families.attention import forward_inputs
from ditbench.measure.workloads import reference_rows
from ditbench.attention.peers.polysketch import sketch_matrices
from ditbench.dit.workload import WorkloadSpec
from test_dit_workload import float32_network_bound
from test_peers_polysketch import _poly4_tolerance, sketch_reference
from tolerances import assert_close, gamma, max_abs, unit_roundoff

RATES = Rates(flops_per_s=1e9, method="assumed")  # fixed, so skips do not depend on machine load
FAST = {"min_run_time": 0.001, "min_repeats": 2}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny problems: one thread is faster on the shared machine and gives the same numbers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def spec(**raw) -> SweepSpec:
    return SweepSpec.from_dict({"experiment": "T", "n": [64, 128], "d": 8} | raw)


def run(sweeps: list[SweepSpec], out, **kwargs):
    return run_sweep(Preset(name="t", specs=tuple(sweeps)), out, threads=1, progress=False,
                     executor=InProcessExecutor(), rates=RATES, **kwargs)


##################################################################################################
# per-kernel parameter tables
##################################################################################################
def test_each_kernel_gets_only_its_own_parameter_table_plus_the_shared_ones_it_accepts():
    s = spec(kernels=["performer", "nystrom", "uniform", "polysketch"],
             params={"seed": [3], "performer": {"features": [16, 32]}, "nystrom": {"landmarks": 8}})
    assert s.params == (("seed", (3,)),)
    assert s.kernel_params == (("nystrom", (("landmarks", (8,)),)), ("performer", (("features", (16, 32)),)))
    got = {}
    for case in expand(s, threads=1):
        got.setdefault(case.kernel, set()).add(case.params)
    assert got["performer"] == {(("features", 16), ("seed", 3)), (("features", 32), ("seed", 3))}
    assert got["nystrom"] == {(("landmarks", 8),)}  # nystrom takes no seed
    assert got["uniform"] == {()}
    assert got["polysketch"] == {(("seed", 3),)}
    # The TOML round trip keeps both forms in the one `params` table.
    text = dump_toml(Preset(name="p", specs=(s,)))
    assert "performer = {features = [16, 32]}" in text
    assert load_preset_text(text, name="p").specs == (s,)


@pytest.mark.parametrize("params, match", [
    ({"performer": {"features": [16]}}, r"params\.performer is a per-kernel table, but 'performer' is not in kernels"),
    ({"nystrom": {"features": [16]}}, r"params\.nystrom \['features'\]: kernel 'nystrom' does not accept it; "
                                      r"it accepts \['landmarks', 'pinv_iterations'\]"),
    ({"seed": [1], "polysketch": {"seed": [2]}}, r"params \['seed'\] are given both shared and in params\.polysketch"),
    ({"nystrom": {}}, r"params\.nystrom is an empty table"),
    ({"nystrom": {"landmarks": {"a": 1}}}, r"params\.nystrom\.landmarks must be a value or a list"),
    ({"nystrom": {"landmarks": []}}, r"'params\.nystrom\.landmarks' is an empty list"),
])
def test_per_kernel_parameter_errors_name_the_table_and_the_limit(params, match):
    with pytest.raises(ValueError, match=match):
        check_spec(spec(kernels=["nystrom", "polysketch"], params=params))


##################################################################################################
# E6: the same inputs for every kernel; PolySketch scored against softmax and its own target
##################################################################################################
def test_e6_mini_sweep_scores_polysketch_against_softmax_and_poly4(tmp_path):
    s = spec(experiment="E6", kernels=["uniform", "polysketch", "poly4_exact"], bound=[1], scale="1/sqrt(d)",
             params={"polysketch": {"sketch_size": [4, 32]}}, **FAST)
    frame = run([s], tmp_path)
    assert (frame["status"] == "ok").all(), frame[["kernel", "reason"]]
    sketch = frame[frame["kernel"] == "polysketch"]
    others = frame[frame["kernel"] != "polysketch"]
    assert len(sketch) == 4 and (sketch["target_kernel"] == "poly4_exact").all()
    assert others["target_kernel"].isna().all() and others["err_target_max"].isna().all()
    for row in sketch.itertuples():
        case = next(c for c in expand(s, threads=1) if c.case_id == row.case_id)
        q, k, v = forward_inputs(case)  # the very inputs the kernel saw (same seed for every kernel)
        assert reference_rows(case.n, case.ref_rows, case.seed) is None  # n ≤ ref_rows: every row checked
        target = KERNELS["poly4_exact"](q.double(), k.double(), v.double(), scale=case.scale)  # (n, dv)
        out = KERNELS["polysketch"](q, k, v, scale=case.scale, **case.kwargs).double()  # deterministic (seeded)
        # The engine ran the same kernels on the same tensors, perhaps in another summation order: each
        # max-norm error moves by at most both evaluations' rounding bounds of what it compares.
        # The float32 sketch (worst-case bounds are vacuous at r² = 1024 in float32) by the naive
        # same-precision baseline rule: the engine's evaluation errs by ≤ 2× this one's against the
        # float64 attention of the same sketch, so the two differ by ≤ 3× this one's error.
        g1, g2 = sketch_matrices(case.d, case.kwargs["sketch_size"], case.kwargs.get("seed", 0), like=q)
        sketch_slack = 3 * float((out - sketch_reference(q, k, v, g1, g2)).abs().max())
        target_slack = 2 * _poly4_tolerance(q, k, v)
        mean_slack = 2 * (gamma(case.m) + unit_roundoff()) * max_abs(v)  # a float64 mean of m rows
        assert_close(row.err_target_max, float((out - target).abs().max()), atol=sketch_slack + target_slack,
                     what="err_target_max")
        assert_close(row.err_target_uniform, float((v.double().mean(0) - target).abs().max()),
                     atol=mean_slack + target_slack, what="err_target_uniform")
        # Triangle inequality in the max norm on the same rows: softmax error of the sketch and of
        # its target differ by at most the sketch's error against the target.
        exact4 = frame[(frame["kernel"] == "poly4_exact") & (frame["n"] == row.n)].iloc[0]
        assert abs(row.err_max - exact4.err_max) <= row.err_target_max * (1 + 1e-12)
        assert 0 < row.err_target_fro_rel < math.inf


##################################################################################################
# E5: dit workload cases
##################################################################################################
TINY = {"model": "DiT-S/8", "image_size": [128], "blocks": 1}  # L = (128/8/8)² = 4 tokens, d = 64, 1 block


def dit(**raw) -> SweepSpec:
    return SweepSpec.from_dict({"experiment": "E5", "workload": "dit", "kernels": ["sdpa", "uniform"],
                                "setting": TINY} | FAST | raw)


@pytest.mark.slow
@pytest.mark.parametrize("op", ["forward", "backward"])
def test_e5_mini_case_gives_ok_rows_with_errors_against_float64_exact(tmp_path, op):
    frame = run([dit(op=op)], tmp_path)
    assert (frame["status"] == "ok").all(), frame[["kernel", "reason"]]
    assert (frame[["n", "m"]] == 4).all().all() and (frame[["d", "dv"]] == 64).all().all()
    assert (frame["scale"] == 64**-0.5).all() and frame["bound"].isna().all() and (frame["workload"] == "dit").all()
    assert json.loads(frame["setting"][0]) == {"batch": 1, "blocks": 1, "model": "DiT-S/8"}
    assert (frame["median_s"] > 0).all() and (frame["predicted_flops"] > 0).all()
    rows = {r.kernel: r for r in frame.itertuples()}
    # The float32 network's rounding bound of tests/test_dit_workload.py (γ of the chain's total length).
    bound = float32_network_bound(WorkloadSpec(model="DiT-S/8", image_size=128, blocks=1, op=op))
    assert_close(rows["sdpa"].err_max_rel, 0.0, atol=bound, what="sdpa float32 network vs float64")
    assert rows["sdpa"].err_vs_uniform < 1e-2 and rows["sdpa"].nonfinite == 0
    # The uniform run repeats the uniform baseline's computation: equal up to a float32 rounding
    # difference of the network, bounded by 4× the exact kernel's measured float32 error.
    assert rows["uniform"].err_uniform > 0
    assert_close(rows["uniform"].err_max, rows["uniform"].err_uniform, atol=4 * rows["sdpa"].err_max)


def test_e5_refusals_become_skipped_rows(tmp_path):
    s = dit(kernels=["fake_small_only"], setting={"model": "DiT-S/2", "image_size": [256, 512], "blocks": 1})
    case = expand(s, threads=1)[0]  # L = 256 > 64: the kernel refuses
    row = measure_case(case)  # straight to the workload: build_workload's ValueError is the skip
    assert row["status"] == "skipped"
    assert row["reason"] == ("build_workload refused: kernel 'fake_small_only' cannot run DiT-S/2 at 256px: "
                             "fake_small_only supports n ≤ 64, not n=256")
    frame = run([s, dit(kernels=["sdpa"], setting={"model": "DiT-S/2", "image_size": [512], "blocks": 1})], tmp_path)
    assert (frame["status"] == "skipped").all()
    reasons = dict(zip(zip(frame["kernel"], frame["n"]), frame["reason"]))
    assert reasons["fake_small_only", 256] == "fake_small_only supports n ≤ 64, not n=256"  # the runner's pre-check
    # 512 px: the QR of the 16384 × 4096 latent basis (5.0e11 FLOP) is over the 30 s budget at 1e9 FLOP/s.
    assert reasons["sdpa", 1024].startswith("building the case is predicted to take 504 s (5.04e+11 FLOP")


@pytest.mark.parametrize("raw, match", [
    ({"n": [64]}, r"workload 'dit' derives \['n', 'm', 'd', 'dv', 'bound', 'scale'\].*remove \['n'\]"),
    ({"setting": {"image_size": 128}}, r"workload 'dit' needs setting \['model'\]"),
    ({"setting": TINY | {"depth": 2}}, r"setting \['depth'\] not allowed for workload 'dit'"),
    ({"workload": "video"}, r"workload='video' is not allowed; allowed values: \['attention', 'dit', 'stats'\]"),
])
def test_dit_spec_errors(raw, match):
    with pytest.raises(ValueError, match=match):
        dit(**raw)


@pytest.mark.parametrize("setting, match", [
    (TINY | {"image_size": 100}, r"image_size=100 must be a multiple of 64"),
    (TINY | {"blocks": 13}, r"setting.blocks=13 must be an integer in \[1, 12\]"),
    (TINY | {"model": "DiT-M/2"}, r"unknown DiT config 'DiT-M/2'"),
    (TINY | {"batch": 0}, r"setting.batch=0 must be an integer ≥ 1"),
])
def test_dit_settings_are_checked_before_running(setting, match):
    with pytest.raises(ValueError, match=match):
        check_spec(dit(setting=setting))


def test_dit_needs_forward_kernels_even_for_backward():
    from ditbench.attention import Kernel

    KERNELS["fake_grad"] = Kernel(name="fake_grad", fn=lambda *a, scale=None: a[0], op="backward")
    try:
        with pytest.raises(ValueError, match=r"kernel 'fake_grad' has op='backward' .*needs op='forward'"):
            check_spec(dit(op="backward", kernels=["fake_grad"]))
    finally:
        del KERNELS["fake_grad"]


##################################################################################################
# the shipped presets
##################################################################################################
@pytest.mark.parametrize("name", ["peers", "dit"])
def test_e5_e6_presets_load_round_trip_and_check(name):
    preset = get_preset(name)
    assert load_preset_text(dump_toml(preset), name=name) == preset
    assert {k for s in preset.specs for k in s.kernels} <= set(KERNELS)
    for s in preset.specs:
        check_spec(s)


def test_peers_preset_covers_every_forward_kernel_with_its_own_parameters():
    (s,) = get_preset("peers").specs
    assert set(s.kernels) == {"sdpa", "uniform", "polynomial", "performer", "hyperattention", "nystrom",
                              "polysketch", "poly4_exact"}
    assert s.n[0] == 2**12 and s.n[-1] == 2**16 and s.d == (8,) and s.scale == ("1/sqrt(d)",)
    assert {k for k, _ in s.kernel_params} == {"polynomial", "performer", "hyperattention", "nystrom", "polysketch"}


def test_a_refused_kernel_whose_cost_model_and_describe_hook_raise_is_skipped_not_a_crash(tmp_path, monkeypatch):
    from ditbench.attention import Kernel, uniform_attention

    def cost(problem, params):  # like the polynomial kernel's when no degree reaches eps
        raise ValueError("no polynomial reaches eps")

    monkeypatch.setitem(KERNELS, "fake_unreachable", Kernel(
        name="fake_unreachable", fn=uniform_attention, cost=cost, describe=cost,
        limits=lambda problem, params: ["fake_unreachable: no degree reaches eps"]))
    frame = run([spec(kernels=["fake_unreachable", "uniform"], **FAST)], tmp_path)
    rows = frame.set_index(["kernel", "n"])
    assert (rows.loc["fake_unreachable", "reason"] == "fake_unreachable: no degree reaches eps").all()
    assert rows.loc["fake_unreachable", "predicted_flops"].isna().all()
    assert (rows.loc["uniform", "status"] == "ok").all()


##################################################################################################
# report: E6 Pareto per entry-bound regime, E5 series split by the DiT setting
##################################################################################################
def test_report_draws_one_pareto_view_per_bound_regime():
    import pandas as pd

    from ditbench.report.select import pareto_points, pareto_regimes

    rows = []
    for bound, err in (("0.5", 1e-3), ("3", 0.3)):  # uniform answer: near at B = 0.5, far at B = 3
        for kernel, seconds, scale in (("uniform", 1e-3, 1.0), ("performer", 1e-2, 2.0), ("nystrom", 2e-2, 0.1)):
            rows.append({"experiment": "E6", "kernel": kernel, "op": "forward", "status": "ok", "n": 4096, "d": 8,
                         "bound": float(bound), "bound_spec": bound, "median_s": seconds, "err_max": err * scale,
                         "params": "{}", "degree": None, "rank": None, "eps": None})
    frame = pd.DataFrame(rows)
    assert pareto_regimes(frame) == ["0.5", "3"]
    for regime, err in (("0.5", 1e-3), ("3", 0.3)):
        pts, where = pareto_points(frame, regime)
        assert where == f"n = 4096, B = {regime}, d = 8"
        # performer (2× the uniform error, slower) is dominated; uniform and nystrom are on the front.
        assert set(pts[pts["front"]]["kernel"]) == {"uniform", "nystrom"}
        assert pts.set_index("kernel").loc["nystrom", "err_max"] == pytest.approx(0.1 * err)


def test_report_series_split_by_dit_setting():
    import pandas as pd

    from ditbench.report.select import by_series

    one, two = '{"blocks": 1, "model": "DiT-S/2"}', '{"blocks": 2, "model": "DiT-S/2"}'
    frame = pd.DataFrame({"experiment": "E5", "kernel": "sdpa", "n": [64, 256, 64, 256], "params": "{}",
                          "setting": [one, one, two, two]})
    labels = [label for label, _ in by_series(frame)]
    assert labels == ["sdpa · blocks=1, model=DiT-S/2", "sdpa · blocks=2, model=DiT-S/2"]
