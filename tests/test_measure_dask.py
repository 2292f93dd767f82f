"""DaskExecutor on real clusters, on 127.0.0.1 only: a LocalCluster of 2 worker processes (one
shared by the tests of this module) and a scheduler and workers started separately as
``dask scheduler`` / ``dask worker`` subprocesses. The smoke preset gives the same cases as a
local run, every row names its worker's machine, and a worker killed mid-case loses no row."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed", reason="the dask extra (dask[distributed]) is not installed")

import fake_kernels as fakes  # noqa: E402  (registers the fake_* kernels in this process)
from ditbench.cli import main as ditbench_main  # noqa: E402
from ditbench.measure import Preset, SweepSpec, WorkerExecutor, get_preset, plan, run_sweep  # noqa: E402
from ditbench.measure.budget import Rates  # noqa: E402
from ditbench.measure.dask_executor import DaskExecutor  # noqa: E402

pytestmark = pytest.mark.slow
RATES = Rates(flops_per_s=1e9, method="assumed")  # fixed: skips must not depend on the load
IMPORTS = (fakes.MODULE,)  # registered on every worker through load_kernels, as locally
TESTS_DIR = str(Path(fakes.__file__).resolve().parent)


def quick_smoke() -> Preset:
    """The smoke preset with short timing and a generous per-case limit (neither is part of a
    case's identity): on a loaded machine a 60 s limit turned a slow case into a timeout row."""
    smoke = get_preset("smoke")
    specs = tuple(dataclasses.replace(s, min_run_time=0.01, min_repeats=2, timeout_s=max(s.timeout_s, 600.0))
                  for s in smoke.specs)
    return Preset(name=smoke.name, specs=specs, source=smoke.source)


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kill") / "killed-once"


@pytest.fixture(scope="module")
def cluster(marker):
    """A LocalCluster of 2 worker processes (1 thread each) whose measurement processes may run
    the worker-killing fakes (armed through the environment the workers inherit)."""
    saved = {key: os.environ.get(key) for key in (fakes.KILL_ENV, fakes.MARKER_ENV, "PYTHONPATH")}
    os.environ.update({fakes.KILL_ENV: "1", fakes.MARKER_ENV: str(marker),
                       "PYTHONPATH": os.pathsep.join(p for p in (TESTS_DIR, saved["PYTHONPATH"]) if p)})
    executor = DaskExecutor(workers=2, imports=IMPORTS)
    try:
        executor.start(RATES)
        yield executor
    finally:
        executor.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def machine_fields_are_the_workers(frame: pd.DataFrame, meta: dict) -> None:
    machines = {m["worker"]: m for m in meta["machines"]}
    ran = frame[frame["failure"].fillna("") != "crash"]  # a lost case has no machine to name
    assert len(machines) >= 1 and ran["worker"].isin(list(machines)).all(), ran["worker"].tolist()
    for row in ran.itertuples():
        m = machines[row.worker]
        assert row.worker.startswith("tcp://127.0.0.1:")
        assert (row.machine, row.host, row.cpu_model, row.torch_version) == (
            m["label"], m["hostname"], m["cpu_model"], m["torch_version"])
        assert row.threads == m["threads"] == 1 and row.rate_flops_per_s == RATES.flops_per_s


def test_smoke_preset_on_a_local_cluster_matches_the_local_executor(cluster, tmp_path):
    with WorkerExecutor(imports=IMPORTS) as local:
        reference = run_sweep(quick_smoke(), tmp_path / "local", threads=1, executor=local, progress=False,
                              rates=RATES)
    frame = run_sweep(quick_smoke(), tmp_path / "dask", threads=1, executor=cluster, progress=False, rates=RATES)
    assert sorted(frame["case_id"]) == sorted(reference["case_id"]) and frame["case_id"].is_unique
    assert (frame["status"] == "ok").all(), frame[["kernel", "n", "reason"]]
    meta = json.loads((tmp_path / "dask" / "meta.json").read_text())
    assert meta["executor"]["name"] == "dask" and meta["executor"]["workers"] == 2
    machine_fields_are_the_workers(frame, meta)
    assert frame["worker"].nunique() == 2  # both workers took cases
    # Same machine, same code: the local run's machine label is the workers' label.
    assert set(frame["machine"]) == set(reference["machine"])


def test_a_killed_worker_loses_no_row_and_the_run_finishes(cluster, tmp_path, marker):
    # fake_kill_parent_once kills the Dask worker running it the first time only: the scheduler
    # reruns it on another worker and it ends ok. fake_kill_parent kills every worker that tries it:
    # after one retry it is recorded failed (crash) with the reason. Every other case is measured.
    p = Preset(name="kill", specs=(SweepSpec.from_dict({
        "experiment": "K", "kernels": ["uniform", "fake_kill_parent_once", "exact", "fake_kill_parent"],
        "n": [32], "d": [4], "min_run_time": 0.01, "min_repeats": 2}),))
    frame = run_sweep(p, tmp_path, threads=1, executor=cluster, progress=False, rates=RATES)
    assert marker.exists()  # a worker really was killed mid-case
    assert len(frame) == 4 and frame["case_id"].is_unique
    rows = {r.kernel: r for r in frame.itertuples()}
    for kernel in ("uniform", "exact", "fake_kill_parent_once"):
        assert rows[kernel].status == "ok", rows[kernel].reason
    lost = rows["fake_kill_parent"]
    assert lost.status == "failed" and lost.failure == "crash" and "died each time" in lost.reason
    stored = pd.read_csv(tmp_path / "results.csv")
    assert len(stored) == 4  # on disk, not only returned
    machine_fields_are_the_workers(frame, json.loads((tmp_path / "meta.json").read_text()))


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear (exit code {proc.poll()})")
        time.sleep(0.1)


def test_separately_started_scheduler_and_workers_on_loopback(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    dask = [str(Path(sys.executable).with_name("dask"))]  # the CLI installed with distributed
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        _wait_for(info, procs[0], 60)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen([*dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out = tmp_path / "run"
        status = ditbench_main(["run", "--preset", "smoke", "--executor", "dask", "--scheduler", address,
                                "--out", str(out), "--threads", "1", "--quiet", "--no-report"])
        assert status == 0
        frame = pd.read_csv(out / "results.csv")
        # The runner's plan is the case set of every executor (the LocalCluster test checks it against a run).
        planned = [case.case_id for case in plan(get_preset("smoke"), threads=1)]
        assert sorted(frame["case_id"]) == sorted(planned) and (frame["status"] == "ok").all()
        meta = json.loads((out / "meta.json").read_text())
        assert meta["executor"]["scheduler"] == address and not meta["executor"]["local_cluster"]
        machines = {m["worker"]: m for m in meta["machines"]}
        assert frame["worker"].isin(list(machines)).all()
        for row in frame.itertuples():  # each worker calibrated itself: the row's rate is its worker's
            m = machines[row.worker]
            assert row.machine == m["label"] and row.rate_flops_per_s == m["rate_flops_per_s"]
            assert m["rate_method"] == "measured" and len(m["rate_samples"]) == meta["calibration"]["repeats"]
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_cli_refuses_cluster_options_that_do_not_fit(capsys):
    assert ditbench_main(["run", "--preset", "smoke", "--executor", "dask", "--no-report"]) == 2
    assert "--executor dask needs --scheduler" in capsys.readouterr().err
    assert ditbench_main(["run", "--preset", "smoke", "--workers", "2", "--no-report"]) == 2
    assert "--workers needs --executor pool or --executor dask" in capsys.readouterr().err
    with pytest.raises(ValueError, match="workers=0 must be ≥ 1"):
        DaskExecutor(workers=0)
