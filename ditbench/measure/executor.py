"""Executors: where cases run. The runner only calls ``map(cases)`` and ``close()``.

- :class:`WorkerExecutor` (default): one persistent worker process, started once (so torch is
  imported once, not per case), reused across cases, killed and restarted after a timeout or a
  crash. Its peak-RSS figure is the worker's own, undisturbed by the runner.
- :class:`InProcessExecutor`: runs cases in this process, for tests and debugging (no timeout,
  no crash isolation).

A distributed engine (e.g. Dask distributed: ``client.submit(measure_case, case)`` per case,
results yielded with ``as_completed``) fits the same two methods.
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .cases import Case
from .point import base_row, finish, measure_case

Row = dict[str, Any]


class Executor(ABC):
    """Runs cases and yields ``(case, row)`` as each finishes (order may differ from input order)."""

    name = "executor"

    def map(self, cases: Iterable[Case]) -> Iterator[tuple[Case, Row]]:
        """Default: one case at a time, in order. ``cases`` is consumed lazily."""
        for case in cases:
            yield case, self.run(case)

    @abstractmethod
    def run(self, case: Case) -> Row:
        """Measure one case and return its row; never raises for a failure of the case itself."""

    def close(self) -> None:  # noqa: B027  (optional hook: a no-op by default, not abstract)
        """Release processes or connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Run each case in the calling process (no timeout: a hanging kernel hangs the run)."""

    name = "in-process"

    def run(self, case: Case) -> Row:
        return measure_case(case)


class WorkerExecutor(Executor):
    """Run cases in a persistent child process with a per-case timeout that really kills.

    The child is a fresh interpreter (``python -m ditbench.measure.worker``) started on the first
    case, so torch is imported once per worker, not per case; it is killed and restarted after a
    timeout or a crash. It inherits this process's ``sys.path`` through ``PYTHONPATH``.

    Args:
        imports: kernel modules the worker registers besides the built-ins and the
            ``ditbench.kernels`` entry points (:func:`ditbench.attention.registry.load_kernels`).
        start_timeout_s: seconds to wait for a fresh worker to import torch and report ready.
    """

    name = "worker"

    def __init__(self, imports: Sequence[str] = (), start_timeout_s: float = 120.0) -> None:
        self.imports = tuple(imports)
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0  # workers killed after a timeout or crash

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.Popen([sys.executable, "-m", "ditbench.measure.worker", *self.imports],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._proc = proc
        if not _wait_readable(proc, self.start_timeout_s):
            self._kill()
            raise RuntimeError(f"measurement worker did not start within {self.start_timeout_s:g} s")
        try:
            message = pickle.load(proc.stdout)  # type: ignore[arg-type]
        except EOFError:
            message = f"worker exited during start-up ({_exit_text(self._kill())})"
        if message != "ready":
            self._kill()
            raise RuntimeError(f"measurement worker failed to start: {message}")
        return proc

    def run(self, case: Case) -> Row:
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            pickle.dump(case, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
        except BrokenPipeError:
            code = self._kill()
            return finish(base_row(case), "failed", f"worker process died before the case ({_exit_text(code)})")
        if not _wait_readable(proc, case.timeout_s):
            self._kill()
            self.restarts += 1
            return finish(base_row(case), "failed", f"timeout after {case.timeout_s:g} s (worker killed and restarted)")
        try:
            return pickle.load(proc.stdout)
        except (EOFError, pickle.UnpicklingError):  # died mid-case: segfault, OOM killer, os._exit
            code = self._kill()
            self.restarts += 1
            return finish(base_row(case), "failed", f"worker process died ({_exit_text(code)}); restarted")

    def _kill(self) -> int | None:
        """Stop the worker (if any) and return its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass
        return code

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                pickle.dump(None, proc.stdin)  # polite stop
                proc.stdin.flush()
                proc.wait(timeout=5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        self._kill()


def _wait_readable(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """True once the worker has written something (or closed its end); False after ``timeout_s``."""
    assert proc.stdout is not None  # started with stdout=PIPE
    readable, _, _ = select.select([proc.stdout], [], [], timeout_s)
    return bool(readable)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}, exit code {code}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# name → factory, for the CLI's --executor choices (a Dask executor would register here).
EXECUTORS: dict[str, type[Executor]] = {"worker": WorkerExecutor, "in-process": InProcessExecutor}
