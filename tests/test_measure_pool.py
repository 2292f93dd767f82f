"""The local pool executor and a preset's [defaults]: points run side by side in separate worker
processes, rows name their worker, a crash or a timeout in one worker leaves the other going, and
the command line's options win over the preset's."""
from __future__ import annotations

import argparse
import json
import time

import pandas as pd
import pytest

import fake_kernels
from ditbench.measure import Preset, SweepSpec, run_sweep
from ditbench.measure import cli as run_cli
from ditbench.measure.budget import Rates
from ditbench.measure.executor import EXECUTORS, PoolExecutor
from ditbench.measure.presets import get_preset
from ditbench.measure.spec import EXECUTOR_NAMES, EXECUTOR_OPTIONS, RunDefaults, dump_toml, load_preset_text

RATES = Rates(flops_per_s=1e9, method="assumed")


def preset(*sweeps: dict) -> Preset:
    base = {"experiment": "X", "n": [32], "d": [4], "min_run_time": 0.001, "min_repeats": 2}
    return Preset(name="t", specs=tuple(SweepSpec.from_dict(base | s) for s in sweeps))


def test_executor_names_agree_between_spec_and_registry():
    assert set(EXECUTOR_NAMES) == set(EXECUTORS) == set(EXECUTOR_OPTIONS)


@pytest.mark.slow
def test_pool_runs_points_side_by_side_and_survives_a_crash_and_a_timeout(tmp_path, monkeypatch):
    # fake_slow (timeout 4 s) occupies one worker while the other measures the rest: the run ends
    # in about the timeout, not the sum, and the segfault restarts only its own worker.
    fake_kernels.worker_path(monkeypatch)
    p = preset({"kernels": ["fake_slow"], "timeout_s": 4},
               {"kernels": ["fake_segfault", "uniform", "exact"], "n": [32, 64]})
    with PoolExecutor(workers=2, imports=(fake_kernels.MODULE,)) as executor:
        start = time.perf_counter()
        frame = run_sweep(p, tmp_path, threads=1, executor=executor, rates=RATES, progress=False)
        wall = time.perf_counter() - start
        assert executor.describe()["restarts"] >= 2  # the sleeper's worker and the segfault's
    assert wall < fake_kernels.SLEEP_S / 5
    status = {(r.kernel, r.n): r.status for r in frame.itertuples()}
    assert status[("fake_slow", 32)] == "failed" and status[("fake_segfault", 32)] == "failed"
    assert all(status[(k, n)] == "ok" for k in ("uniform", "exact") for n in (32, 64))
    assert set(frame["worker"]) == {"pool-0", "pool-1"}  # both workers measured something
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["executor"]["name"] == "pool" and meta["executor"]["workers"] == 2


def test_pool_refuses_a_bad_worker_count():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="workers="):
            PoolExecutor(workers=bad)  # type: ignore[arg-type]


def test_preset_defaults_round_trip_and_refuse_bad_values():
    stats = get_preset("stats")
    assert stats.defaults == RunDefaults(threads=1, executor="pool", workers=2)
    again = load_preset_text(dump_toml(stats), name="stats")
    assert again.defaults == stats.defaults and again.specs == stats.specs
    sweep = '[[sweep]]\nexperiment = "X"\nkernels = ["exact"]\nn = [32]\nd = 4\n'
    for table, message in (("threads = 0", "threads = 0 must be an integer ≥ 1"),
                           ('executor = "gpu-farm"', "executor = 'gpu-farm'; allowed"),
                           ("workers = 2", "workers needs executor"),
                           ("cores = 2", "unknown \\[defaults\\] key")):
        with pytest.raises(ValueError, match=message):
            load_preset_text(f"[defaults]\n{table}\n{sweep}", name="bad")


def args_for(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_line_options_win_over_preset_defaults():
    stats = get_preset("stats")
    args = args_for("--preset", "stats")
    run_cli.apply_defaults(args, stats)
    assert (args.threads, args.executor, args.workers) == (1, "pool", 2)
    assert run_cli.executor_options(args) == {"workers": 2}
    args = args_for("--preset", "stats", "--threads", "2", "--executor", "worker")
    run_cli.apply_defaults(args, stats)
    assert (args.threads, args.executor, args.workers) == (2, "worker", None)
    assert run_cli.executor_options(args) == {}
    args = args_for("--preset", "default")
    run_cli.apply_defaults(args, get_preset("default"))
    assert (args.threads, args.executor) == (run_cli.DEFAULT_THREADS, "worker")


def test_workers_need_an_executor_that_takes_them_and_pool_notes_warn():
    args = args_for("--workers", "2")
    run_cli.apply_defaults(args, get_preset("smoke"))
    with pytest.raises(ValueError, match="--workers needs --executor pool or --executor dask"):
        run_cli.executor_options(args)
    args = args_for("--executor", "pool")
    run_cli.apply_defaults(args, get_preset("smoke"))
    with pytest.raises(ValueError, match="--executor pool needs --workers N"):
        run_cli.executor_options(args)
    args = args_for("--executor", "pool", "--workers", "64", "--threads", "2")
    run_cli.apply_defaults(args, get_preset("smoke"))
    notes = run_cli.pool_notes(args, get_preset("smoke"))
    assert any("side by side" in n for n in notes) and any("exceed this machine" in n for n in notes)
    args = args_for("--preset", "stats")
    run_cli.apply_defaults(args, get_preset("stats"))
    assert not any("side by side" in n for n in run_cli.pool_notes(args, get_preset("stats")))


@pytest.mark.slow
def test_stats_points_give_the_same_results_in_a_pool_as_one_by_one(tmp_path):
    # The stats preset's claim: seeded one-thread trainings do not depend on what runs beside them.
    from ditbench.measure import WorkerExecutor

    p = Preset(name="s", specs=(SweepSpec.from_dict({
        "experiment": "E7", "workload": "stats", "kernels": ["sdpa"], "seeds": [0], "min_run_time": 0.01,
        "setting": {"network": ["latent", "ambient"], "train_samples": 200, "ambient_dim": 8, "latent_dim": 2,
                    "steps": 20}}),))
    metrics = ["network", "score_err", "score_err_on", "score_err_off", "train_loss", "sample_mmd"]
    frames = []
    for name, executor in (("pool", PoolExecutor(workers=2)), ("serial", WorkerExecutor())):
        with executor:
            frame = run_sweep(p, tmp_path / name, threads=1, executor=executor, rates=RATES, progress=False)
        assert (frame["status"] == "ok").all(), frame["reason"].tolist()
        frames.append(frame[metrics].sort_values("network").reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
