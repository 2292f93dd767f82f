"""Run one sweep on several exported versions, interleaved: passes BASE, HEAD, BASE, HEAD, …

Each version gets one long-lived *side process*: a fresh interpreter with the version's copy
first on ``PYTHONPATH`` (and as its working directory), so every import of ``ditbench`` in it —
kernels, runner, timing — is that version's code. It imports torch once, then runs one pass of
the sweep per order it reads on stdin, through that version's own public runner
(``ditbench.measure.run_sweep`` with an in-process executor: the side process *is* the worker),
into ``OUT/<label>/pass-NN/``. The driver below is the only code of this version that runs there,
and it uses only the API every version since the first wave has (``load_config``, ``run_sweep``,
``InProcessExecutor``). Passes alternate between the sides, so slow phases of a shared machine
fall on both; each pass's rows get ``pass_index`` = its pass number, and each side's rows are
merged into ``OUT/<label>/results.csv`` (+ ``meta.json``), a results directory that
``ditbench compare OUT/base OUT/head`` reads again.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..schema import COLUMNS
from .sources import META_FILE, RESULTS_FILE, Side, read_side

# Runs in the side process (python -c DRIVER CONFIG THREADS), with the version's copy on sys.path.
DRIVER = r"""
import json, sys
from pathlib import Path
import ditbench
from ditbench.measure import InProcessExecutor, load_config, run_sweep
preset = load_config(Path(sys.argv[1]))
threads = int(sys.argv[2])
print(json.dumps({"ready": ditbench.__file__}), flush=True)
for line in sys.stdin:
    order = json.loads(line)
    with InProcessExecutor() as executor:
        frame = run_sweep(preset, order["out"], threads=threads, executor=executor, progress=False)
    print(json.dumps({"done": order["out"], "rows": len(frame)}), flush=True)
"""
START_TIMEOUT_S = 300.0  # torch import on a loaded machine


@dataclass(frozen=True)
class Version:
    label: str  # "base" | "head"
    origin: str  # the revision as given
    sha: str
    root: Path  # the exported copy (holds ditbench/)


class SideProcess:
    """One version's side process (see module doc)."""

    def __init__(self, version: Version, config: Path, threads: int, log: Path) -> None:
        self.version = version
        env = dict(os.environ, PYTHONPATH=str(version.root))
        env.pop("PYTHONSTARTUP", None)
        self._log = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(config), str(threads)], cwd=version.root,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, bufsize=1)
        self.imported = self._answer("ready")

    def _answer(self, key: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # a kernel's own print: not the protocol
            if isinstance(message, dict) and key in message:
                return str(message[key])
        code = self.proc.wait()
        raise OSError(f"the {self.version.label} side ({self.version.origin}) exited with status {code} before "
                      f"answering {key!r}; its log: {self._log.name}")

    def run_pass(self, out: Path) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"out": str(out)}) + "\n")
        self.proc.stdin.flush()
        self._answer("done")

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def pass_order(labels: Sequence[str], passes: int) -> list[tuple[int, str]]:
    """(pass, label) in run order: every label once per pass, the order reversed on odd passes
    (BASE HEAD HEAD BASE BASE HEAD …), so neither side always runs right after the other."""
    order: list[tuple[int, str]] = []
    for p in range(passes):
        round_ = list(labels) if p % 2 == 0 else list(reversed(labels))
        order.extend((p, label) for label in round_)
    return order


def run_interleaved(versions: Sequence[Version], config: Path, out: Path, *, passes: int, threads: int,
                    say: bool = True) -> dict[str, Side]:
    """Measure the sweep in ``config`` on every version, ``passes`` passes each, interleaved."""
    if passes < 2:
        raise ValueError(f"passes={passes} must be ≥ 2 (one pass per side cannot alternate with the other)")
    sides: dict[str, SideProcess] = {}
    log: list[dict] = []
    try:
        for version in versions:
            (out / version.label).mkdir(parents=True, exist_ok=True)
            sides[version.label] = SideProcess(version, config, threads, out / version.label / "side.log")
        for index, label in pass_order([v.label for v in versions], passes):
            start = time.time()
            target = out / label / f"pass-{index:02d}"
            sides[label].run_pass(target)
            log.append({"pass": index, "side": label, "start": start, "seconds": time.time() - start})
            if say:
                print(f"pass {index + 1}/{passes} {label}: {log[-1]['seconds']:.1f} s", file=sys.stderr)
    finally:
        for side in sides.values():
            side.close()
    return {v.label: merge(v, out / v.label, passes, log, sides[v.label].imported) for v in versions}


def merge(version: Version, where: Path, passes: int, log: list[dict], imported: str) -> Side:
    """Concatenate ``where/pass-NN/results.csv`` (pass_index set) into ``where/results.csv``."""
    from ..schema import read_results

    frames = []
    for p in range(passes):
        part = read_results(where / f"pass-{p:02d}" / RESULTS_FILE)
        part["pass_index"] = p
        frames.append(part)
    frame = pd.concat(frames, ignore_index=True)
    frame.reindex(columns=list(COLUMNS)).to_csv(where / RESULTS_FILE, index=False, na_rep="")
    first = json.loads((where / "pass-00" / META_FILE).read_text(encoding="utf-8"))
    meta = {**first, "compare": {"revision": version.origin, "sha": version.sha, "copy": str(version.root),
                                 "imported": imported, "passes": passes,
                                 "order": [entry for entry in log]}}
    (where / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return read_side(where, version.label)
