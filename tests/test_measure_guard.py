"""Resume safety and the advisory lock (ditbench.measure.guard), through the CLI and the library."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ditbench.cli import main as ditbench_main
from ditbench.measure.guard import RunLock, RunLocked, check_resume, run_identity

SWEEP = """
[[sweep]]
experiment = "{experiment}"
kernels = ["exact"]
n = [16, 32]
d = 2
min_run_time = 0.001
min_repeats = 1
time_budget_s = 5
"""


def _config(tmp_path: Path, experiment: str = "E1", folder: str = "") -> Path:
    path = tmp_path / folder / "a.toml"  # same file name: the preset name does not differ
    path.parent.mkdir(exist_ok=True)
    path.write_text(SWEEP.format(experiment=experiment))
    return path


def _run(config: Path, out: Path, *extra: str) -> int:
    return ditbench_main(["run", "--config", str(config), "--out", str(out), "--executor", "in-process",
                          "--quiet", "--no-report", "--threads", "1", *extra])


def _rows(out: Path) -> int:
    return len((out / "results.csv").read_text().splitlines()) - 1


def test_resume_of_the_same_run_is_allowed(tmp_path):
    config, out = _config(tmp_path), tmp_path / "out"
    assert _run(config, out) == 0
    assert _run(config, out, "--resume") == 0
    assert _rows(out) == 2  # nothing doubled


@pytest.mark.parametrize("change, field", [("experiment", "spec"), ("threads", "threads")])
def test_resume_refuses_a_different_run_and_force_records_both(tmp_path, capsys, change, field):
    out = tmp_path / "out"
    assert _run(_config(tmp_path), out) == 0
    other = _config(tmp_path, "Z", "other") if change == "experiment" else _config(tmp_path)
    extra = ("--threads", "2") if change == "threads" else ()
    capsys.readouterr()
    assert _run(other, out, "--resume", *extra) == 2
    err = capsys.readouterr().err
    assert f"{field}:" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert _rows(out) == 2  # nothing was added
    assert _run(other, out, "--resume", "--force", *extra) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert [d["field"] for d in meta["resume_forced"]] == [field]
    assert meta["resume_forced"][0]["stored"] != meta["resume_forced"][0]["now"]


def test_resume_with_a_meta_json_that_is_a_list_is_a_usage_error(tmp_path, capsys):
    config, out = _config(tmp_path), tmp_path / "out"
    assert _run(config, out) == 0
    (out / "meta.json").write_text("[1, 2]")
    assert _run(config, out, "--resume") == 2
    assert "JSON list" in capsys.readouterr().err
    assert _run(config, out, "--resume", "--force") == 0


def test_force_without_resume_is_refused(tmp_path, capsys):
    assert _run(_config(tmp_path), tmp_path / "out", "--force") == 2
    assert "--force only applies to --resume" in capsys.readouterr().err


def test_check_resume_lists_every_difference(tmp_path):
    meta = tmp_path / "meta.json"
    stored = run_identity({"name": "a", "sweep": [{"experiment": "E1", "n": [1, 2]}]}, threads=1, device="cpu")
    meta.write_text(json.dumps({"identity": stored}))
    now = run_identity({"name": "b", "sweep": [{"experiment": "E1", "n": [1, 4]}]}, threads=2, device="cpu")
    with pytest.raises(ValueError, match=r"spec: sweep E1 field n: \[1, 2\] \(stored\) vs \[1, 4\] \(now\).*"
                                         r"preset: 'a' \(stored\) vs 'b' \(now\).*threads: 1 \(stored\) vs 2"):
        check_resume(meta, now, force=False)
    assert [d["field"] for d in check_resume(meta, now, force=True)] == ["spec", "preset", "threads"]
    assert check_resume(meta, stored, force=False) == []


def test_a_second_lock_on_the_same_directory_fails_at_once(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLocked, match="in use by another ditbench run"):
            RunLock(tmp_path)
    RunLock(tmp_path).release()  # released: free again


@pytest.mark.slow  # two more interpreters, one running `ditbench run`
def test_a_concurrent_run_on_the_same_out_fails_at_once(tmp_path):
    """A second process's run fails with exit 2 while the first holds --out (no duplicate rows)."""
    config, out = _config(tmp_path), tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from ditbench.measure.guard import RunLock
        with RunLock({str(out)!r}):
            print("locked", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = subprocess.run([sys.executable, "-m", "ditbench", "run", "--config", str(config), "--out", str(out),
                               "--executor", "in-process", "--quiet", "--no-report"],
                              capture_output=True, text=True, timeout=120)
    finally:
        holder.communicate("\n", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "in use by another ditbench run (pid" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "results.csv").exists()
