"""Malformed specs, files and CLI invocations, as a table: each must end in its documented exit code
with one line on stderr and no traceback (ditbench/cli.py: 2 = the user's input, 1 = the
environment, 130 = interrupted), before any worker starts and without leaving a results file.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ditbench.cli import main as ditbench_main
from fuzzing import hang_guard, record

SWEEP = """[[sweep]]
experiment = "Z"
kernels = ["exact", "polynomial", "performer"]
n = [16, 32]
d = 2
min_run_time = 0.001
min_repeats = 1
{extra}
"""
# (id, extra TOML lines of the sweep, text the one-line message must contain)
BAD_SPECS = [
    ("eps-0", "params = {eps = [0]}", "eps=0"),
    ("eps-2", "params = {eps = [2.0]}", "eps=2.0"),
    ("eps-str", 'params = {eps = ["abc"]}', "eps='abc'"),
    ("eps-table", "params = {eps = [{a = 1}]}", "eps={'a': 1}"),
    ("degree-neg", "params = {degree = [-1]}", "degree=-1"),
    ("degree-60", "params = {degree = [60]}", "≤ 40"),
    ("degree-1e6", "params = {degree = [1000000]}", "degree=1000000"),
    ("memory-neg", "params = {memory_budget = [-1]}", "memory_budget=-1"),
    ("features-0", "params = {performer = {features = [0]}}", "features=0"),
    ("features-1e9", "params = {performer = {features = [1000000000]}}", "GiB"),
    ("block-0", "params = {block_size = [0]}", "block_size=0"),
    ("unknown-param", "params = {colour = [1]}", "colour"),
    ("grid-endless", "n = {start = 64, stop = 4611686018427387904, factor = 1.0000001}", "over the limit of 1000"),
    ("grid-inf", "n = {start = 64, stop = 128, factor = inf}", "factor=inf"),
    ("bound-tower", 'bound = "((((10**64)**64)**64)**64)**64"', "overflows"),
    ("bound-deep", "bound = \"" + "-" * 300 + "1\"", "nested"),
    ("bound-calls", "bound = \"" + "sqrt(" * 60 + "n" + ")" * 60 + "\"", "nested"),
    ("bound-long", "bound = \"" + "+".join(["1"] * 400) + "\"", "over the limit"),
    ("bound-nan", 'bound = "log(0-1)"', "bound"),
    ("bound-code", 'bound = "__import__(\'os\').system(\'true\')"', "are allowed in"),
    ("too-many-cases", "seeds = [" + ", ".join(str(i) for i in range(12_000)) + "]", "cases, over the limit"),
    ("bad-toml", "n = [16,", "invalid TOML"),
    ("deep-toml", "x = " + "[" * 3000 + "]" * 3000, "nested too deeply"),
]


def _say(case: str, code: int, err: str) -> None:
    assert "Traceback" not in err, f"{case}: traceback on stderr:\n{err}"
    record("cli", case, f"exit {code}")


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with hang_guard(120):
        try:
            code = ditbench_main(argv)
        except SystemExit as stop:  # argparse's usage errors
            code = int(stop.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case, extra, message", BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_a_malformed_spec_exits_2_naming_the_value_before_anything_runs(tmp_path, capsys, case, extra, message):
    if case in ("grid-endless", "grid-inf"):
        config_text = SWEEP.replace("n = [16, 32]\n", "").format(extra=extra)
    else:
        config_text = SWEEP.format(extra=extra)
    config, out = tmp_path / "bad.toml", tmp_path / "out"
    config.write_text(config_text)
    code, err = _run(["run", "--config", str(config), "--out", str(out), "--executor", "in-process", "--quiet",
                      "--no-report"], capsys)
    _say(case, code, err)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists(), "a refused spec must not create the output directory"
    # (No wall-clock assertion: the endless grid is refused from its case count, computed without
    # expanding it; a planner that expanded it would hang here and fail CI by its timeout.)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _cli_table(tmp: Path) -> list[tuple[str, list[str], int, str]]:
    """(id, argv, expected exit code, text stderr must contain) for every subcommand."""
    config = _write(tmp / "ok.toml", SWEEP.format(extra="").replace('"polynomial", "performer"', ""))
    afile = _write(tmp / "afile", "x")
    run = ["run", "--config", str(config), "--executor", "in-process", "--quiet", "--no-report"]
    deep = "[" * 100_000 + "]" * 100_000
    fit_files = {
        "fit-benchmarks-ints": ('{"benchmarks": [1, 2]}', "benchmarks[0] must be a dict"),
        "fit-params-str": ('{"benchmarks": [{"params": "x"}]}', "params must be a dict"),
        "fit-stats-list": ('{"benchmarks": [{"params": {"n": 1}, "stats": [1]}]}', "stats must be a dict"),
        "fit-time-str": ('{"benchmarks": [{"params": {"n": 1}, "stats": {"median": "x"}}]}', "finite number"),
        "fit-deep": ('{"benchmarks": ' + deep + "}", "nested too deeply"),
        "fit-not-json": ("{", "cannot read JSON"),
        "fit-neither": ('{"a": 1}', "neither pytest-benchmark"),
    }
    table = [
        ("run-out-file", [*run, "--out", str(afile)], 1, "is a file, not a directory"),
        ("run-out-under-file", [*run, "--out", str(afile / "sub")], 1, "which is a file"),
        ("run-out-unwritable", [*run, "--out", "/proc/ditbench-fuzz/out"], 1, "/proc/ditbench-fuzz"),
        ("run-resume-no-out", [*run, "--resume"], 2, "--resume needs --out"),
        ("run-force-no-resume", [*run, "--out", str(tmp / "o1"), "--force"], 2, "--force only applies"),
        ("run-threads-0", [*run, "--out", str(tmp / "o2"), "--threads", "0"], 2, "threads=0"),
        ("run-threads-str", [*run, "--out", str(tmp / "o3"), "--threads", "x"], 2, "invalid int value"),
        ("run-device-tpu", [*run, "--out", str(tmp / "o4"), "--device", "tpu"], 2, "invalid choice"),
        ("run-config-missing", ["run", "--config", str(tmp / "nope.toml")], 2, "does not exist"),
        ("run-preset-unknown", ["run", "--preset", "nope"], 2, "invalid choice"),
        ("no-command", [], 2, "required"),
        ("report-out-file", ["report", str(tmp), "--out", str(afile)], 1, "is a file, not a directory"),
        ("report-missing-run", ["report", str(tmp / "nope"), "--out", str(tmp / "site")], 2, "nope"),
        ("fit-missing", ["fit", str(tmp / "nope.csv")], 2, "no such file"),
        ("fit-csv-columns", ["fit", str(_write(tmp / "c.csv", "a,b\n1,2\n"))], 2, "missing column"),
        ("fit-csv-empty", ["fit", str(_write(tmp / "e.csv", ""))], 2, "cannot read CSV"),
        ("fit-asv-results-list", ["fit", str(_write(tmp / "asv" / "m" / "r.json",
                                                     '{"result_columns": ["result"], "results": [1]}'))],
         2, "benchmarks.json"),
    ]
    _write(tmp / "asv2" / "benchmarks.json", '{"b": {"type": "time", "param_names": ["n"]}, "version": 2}')
    table.append(("fit-asv-results-not-dict", ["fit", str(_write(tmp / "asv2" / "m" / "r.json",
                                                                   '{"result_columns": ["result"], "results": [1]}'))],
                  2, "results must be a dict"))
    for name, (text, message) in fit_files.items():
        table.append((name, ["fit", str(_write(tmp / f"{name}.json", text))], 2, message))
    criteria = ["criteria", "--model", "DiT-S/8"]
    for flag, value, message in [("--eps", "0", "eps"), ("--eps", "2", "eps"), ("--eps", "nan", "eps"),
                                 ("--batch", "0", "batch"), ("--threads", "0", "threads"),
                                 ("--image-size", "0", "image_size=0"), ("--image-size", "60", "multiple of 64"),
                                 ("--image-size", "-64", "image_size=-64"), ("--image-size", "64", "L = 1 token"),
                                 ("--perturb", "nan", "perturb"), ("--perturb", "-1", "perturb")]:
        table.append((f"criteria{flag}={value}", [*criteria, "--image-size", "128", flag, value], 2, message))
    for name, data in [("empty.pt", b""), ("truncated.pt", b"PK\x03\x04garbage"), ("broken.safetensors", b"\x10\x00")]:
        (tmp / name).write_bytes(data)
        table.append((f"criteria-{name}", [*criteria, "--image-size", "128", "--checkpoint", str(tmp / name)], 2,
                      "checkpoint" if name.startswith("empty") else "cannot read"))
    return table


def test_every_subcommand_turns_bad_input_into_one_line_and_its_exit_code(tmp_path, capsys):
    failures = []
    for case, argv, expected, message in _cli_table(tmp_path):
        code, err = _run(argv, capsys)
        _say(case, code, err)
        lines = err.strip().splitlines()
        if code != expected or message not in err or len(lines) != 1:
            failures.append(f"{case}: exit {code} (expected {expected}), stderr {err!r}")
    assert not failures, "\n".join(failures)


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ValueError, match="batch"):
        ditbench_main(["--debug", "criteria", "--model", "DiT-S/8", "--image-size", "128", "--batch", "0"])


def test_an_environment_fault_mid_run_says_what_was_kept(tmp_path, capsys, monkeypatch):
    """A full disk while writing rows: exit 1, one line naming the fault, the rows kept and the resume command."""
    from ditbench.measure import results

    config = _write(tmp_path / "ok.toml", SWEEP.format(extra="").replace('"polynomial", "performer"', ""))
    real_append, calls = results.ResultStore.append, []

    def append(self, row):
        calls.append(row)
        if len(calls) > 1:
            raise OSError(28, "No space left on device", str(self.path))
        real_append(self, row)

    monkeypatch.setattr(results.ResultStore, "append", append)
    out = tmp_path / "out"
    code, err = _run(["run", "--config", str(config), "--out", str(out), "--executor", "in-process", "--quiet",
                      "--no-report"], capsys)
    _say("run-disk-full", code, err)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and "points kept in" in err and "--resume" in err, err


@pytest.mark.slow
def test_checkpoints_with_nan_or_integer_weights_are_refused(tmp_path, capsys):
    from ditbench.dit import build_dit

    state = build_dit("DiT-S/8", 128, seed=0).state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    nan = dict(state)
    nan[first] = state[first].clone().fill_(float("nan"))
    ints = {k: v.to(torch.int64) if v.is_floating_point() else v for k, v in state.items()}
    for name, weights, message in [("nan.pt", nan, "non-finite weights"), ("int64.pt", ints, "dtype torch.int64")]:
        torch.save(weights, tmp_path / name)
        code, err = _run(["criteria", "--model", "DiT-S/8", "--image-size", "128", "--checkpoint",
                          str(tmp_path / name)], capsys)
        _say(f"criteria-{name}", code, err)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_ctrl_c_keeps_the_points_and_prints_the_resume_command(tmp_path):
    """SIGINT mid-run: exit 130, 'interrupted; N points kept in …; resume with …', no traceback;
    the resume command then finishes the run with no duplicate case."""
    config = _write(tmp_path / "slow.toml", SWEEP.replace("min_run_time = 0.001", "min_run_time = 0.3").format(
        extra="").replace('"exact", "polynomial", "performer"', '"exact", "sdpa", "uniform"'))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-m", "ditbench", "run", "--config", str(config), "--out", str(out), "--quiet",
            "--no-report", "--threads", "1"]
    # SIGINT back to its default in the child: a test runner started in the background by a
    # non-interactive shell (or under nohup) passes SIGINT on *ignored*, and Python then keeps
    # ignoring it, so Ctrl-C would never reach the run (seen in a backgrounded `.ci/run`).
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    results = out / "results.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists() or len(results.read_text().splitlines()) < 2):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole foreground process group
    _, err = proc.communicate(timeout=120)
    record("cli", "run-sigint", f"exit {proc.returncode}")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted;" in err and "points kept in" in err, err
    command = err.split("resume with `", 1)[1].split("`", 1)[0]
    assert command.startswith("ditbench run --config") and command.endswith("--resume")
    kept = len(results.read_text().splitlines()) - 1
    assert kept >= 1
    finish = subprocess.run([sys.executable, "-m", "ditbench", *command.split()[1:], "--quiet", "--no-report"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr
    import pandas as pd

    ids = pd.read_csv(results)["case_id"]
    assert len(ids) == 6 and ids.is_unique, "2 sizes × 3 kernels, none lost, none doubled"
