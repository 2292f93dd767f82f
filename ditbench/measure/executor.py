"""Executors: where cases run, behind one contract that a distributed engine can meet.

The contract (what :func:`~.runner.run_sweep` relies on, and all it relies on):

- ``start(rates)`` once, before the first case: ``rates`` fixes the cost model's rate for every
  worker (tests, reproducible skips); ``None`` means each worker calibrates its own machine.
- ``submit(cases)``: queue a batch and return at once.
- ``completed()``: yield ``(case, row)`` for every submitted case as it finishes (any order),
  including cases submitted while iterating; it ends when nothing is left in flight.
- ``capacity``: how many cases can run at once; the runner keeps at most that many submitted
  and unfinished, so its skip and timeout policy sees each result before it sends more.
- ``machines()``: the :class:`~.machine.Machine` every worker probed (calibration, for meta.json).
- ``close()``.

An executor returns rows; it never writes the results store (the runner does, alone). Every row it
returns for a case that reached a worker carries that worker's machine fields, and a case that
could not finish comes back as a ``failed`` row whose ``failure`` says why (timeout, crash).

- :class:`WorkerExecutor` (default): one persistent worker process, started once (so torch is
  imported once, not per case), reused across cases, killed and restarted after a timeout or a
  crash. Its peak-RSS figure is the worker's own, undisturbed by the runner.
- :class:`InProcessExecutor`: runs cases in this process, for tests and debugging (no timeout,
  no crash isolation).
- :class:`PoolExecutor`: ``workers`` :class:`WorkerExecutor` processes on this machine, each
  running one case at a time, for workloads whose points are independent and whose result is not
  a timing (the ``stats`` trainings). Points that run side by side share the machine, so their
  times are not headline figures; meta.json records the executor and its worker count.
- :class:`~.dask_executor.DaskExecutor`: a Dask distributed cluster, one case at a time per
  worker process, each case inside a :class:`WorkerExecutor` on that worker.
"""
from __future__ import annotations

import math
import os
import pickle
import queue
import select
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from .._checks import total_memory
from .budget import Rates
from .cases import Case
from .machine import Machine, Probe, probe
from .point import base_row, finish, run_case

Row = dict[str, Any]


class Executor(ABC):
    """Runs cases and yields ``(case, row)`` as each finishes (contract: module docstring)."""

    name = "executor"

    @property
    def capacity(self) -> int:
        """Cases that can run at once."""
        return 1

    @abstractmethod
    def start(self, rates: Rates | None = None) -> None:
        """Prepare to run cases; ``rates``: the cost model's rate for every worker (None: calibrate)."""

    @abstractmethod
    def submit(self, cases: Sequence[Case]) -> None:
        """Queue ``cases``; returns at once."""

    @abstractmethod
    def completed(self) -> Iterator[tuple[Case, Row]]:
        """``(case, row)`` for each submitted case as it finishes, until none is in flight."""

    def machines(self) -> list[Machine]:
        """Every worker's machine probed so far."""
        return []

    def describe(self) -> dict[str, Any]:
        """How this executor ran (for meta.json)."""
        return {"name": self.name}

    def close(self) -> None:  # noqa: B027  (optional hook: a no-op by default, not abstract)
        """Release processes or connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """One case at a time, in submission order, each measured by :meth:`run` when ``completed()``
    reaches it; the machine is probed once per (device, threads) and kept."""

    def start(self, rates: Rates | None = None) -> None:
        self._rates = rates
        self._queue: deque[Case] = deque()
        self._machines: dict[tuple[str, int], Machine] = {}

    def submit(self, cases: Sequence[Case]) -> None:
        self._queue.extend(cases)

    def completed(self) -> Iterator[tuple[Case, Row]]:
        while self._queue:
            case = self._queue.popleft()
            yield case, self.run(case)

    def machine(self, case: Case) -> Machine:
        """This executor's machine for ``case``'s device and threads (probed on first use)."""
        key = (case.device, case.threads)
        if key not in self._machines:
            self._machines[key] = self._probe(Probe(case.device, case.threads, rates=self._rates, worker=self.name))
        return self._machines[key]

    def machines(self) -> list[Machine]:
        return list(getattr(self, "_machines", {}).values())

    @abstractmethod
    def _probe(self, request: Probe) -> Machine:
        """Describe and calibrate the machine where :meth:`run` measures."""

    @abstractmethod
    def run(self, case: Case) -> Row:
        """Measure one case and return its row; never raises for a failure of the case itself."""


class InProcessExecutor(SerialExecutor):
    """Run each case in the calling process (no timeout: a hanging kernel hangs the run)."""

    name = "in-process"

    def _probe(self, request: Probe) -> Machine:
        return probe(request.device, request.threads, rates=request.rates, worker=request.worker)

    def run(self, case: Case) -> Row:
        return run_case(case, self.machine(case))


class WorkerExecutor(SerialExecutor):
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

    def __init__(self, imports: Sequence[str] = (), start_timeout_s: float = 120.0,
                 memory_limit: float | None = None, worker: str = "worker") -> None:
        self.imports = tuple(imports)
        self.start_timeout_s = start_timeout_s
        self.memory_limit = memory_limit  # cap on the budget's memory (a Dask worker's share)
        self.worker = worker  # the row's worker column
        self._proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0  # workers killed after a timeout or crash

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.Popen([sys.executable, "-m", "ditbench.measure.worker", *self.imports],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._proc = proc
        message = self._answer(proc, self.start_timeout_s, "start")
        if message != "ready":
            self._kill()
            raise RuntimeError(f"measurement worker failed to start: {message}")
        return proc

    def _running(self) -> subprocess.Popen[bytes]:
        return self._proc if self._proc is not None and self._proc.poll() is None else self._start()

    def _answer(self, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> object:
        """The worker's next message, or a text saying why there is none (worker killed)."""
        if not _wait_readable(proc, timeout_s):
            self._kill()
            raise RuntimeError(f"measurement worker did not {what} within {timeout_s:g} s")
        try:
            return pickle.load(proc.stdout)  # type: ignore[arg-type]
        except EOFError:
            return f"worker exited during {what} ({_exit_text(self._kill())})"

    def _probe(self, request: Probe) -> Machine:
        proc = self._running()
        send = Probe(request.device, request.threads, rates=request.rates, memory_limit=self.memory_limit,
                     worker=self.worker)
        _send(proc, send)
        answer = self._answer(proc, self.start_timeout_s, "calibrate")
        if not isinstance(answer, Machine):
            self._kill()
            raise RuntimeError(f"measurement worker could not probe its machine: {answer}")
        return answer

    def run(self, case: Case) -> Row:
        machine = self.machine(case)
        stamp = machine.row_fields()
        proc = self._running()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _send(proc, (case, machine))
        except BrokenPipeError:
            code = self._kill()
            return finish(base_row(case), "failed", f"worker process died before the case ({_exit_text(code)})",
                          failure="crash", **stamp)
        if not _wait_readable(proc, case.timeout_s):
            self._kill()
            self.restarts += 1
            return finish(base_row(case), "failed", f"timeout after {case.timeout_s:g} s (worker killed and restarted)",
                          failure="timeout", **stamp)
        try:
            return pickle.load(proc.stdout)
        except (EOFError, pickle.UnpicklingError):  # died mid-case: segfault, OOM killer, os._exit
            code = self._kill()
            self.restarts += 1
            return finish(base_row(case), "failed", f"worker process died ({_exit_text(code)}); restarted",
                          failure="crash", **stamp)

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


class PoolExecutor(Executor):
    """``workers`` persistent :class:`WorkerExecutor` processes on this machine, one case each at a
    time; a :class:`~concurrent.futures.ThreadPoolExecutor` thread per worker waits on its pipe.

    Each worker keeps everything a :class:`WorkerExecutor` gives (killing timeouts, crash
    isolation, its own peak RSS) and budgets memory against ``1/workers`` of this machine's RAM.
    Rows name their worker (``pool-0``, ``pool-1``, …).

    Args:
        workers: worker processes (≥ 1); with ``threads`` torch threads per case, keep
            ``workers × threads`` within the cores, or the workers slow each other down.
        imports, start_timeout_s: as for :class:`WorkerExecutor`.
    """

    name = "pool"

    def __init__(self, workers: int = 2, imports: Sequence[str] = (), start_timeout_s: float = 120.0) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} must be an integer ≥ 1")
        self.workers = workers
        self.imports = tuple(imports)
        self.start_timeout_s = start_timeout_s
        self._all: list[WorkerExecutor] = []

    @property
    def capacity(self) -> int:
        return self.workers

    def start(self, rates: Rates | None = None) -> None:
        self.close()
        total = total_memory("cpu")  # inf where the OS does not say: no cap
        limit = total / self.workers if math.isfinite(total) else None
        self._all = [WorkerExecutor(self.imports, self.start_timeout_s, memory_limit=limit, worker=f"pool-{i}")
                     for i in range(self.workers)]
        self._idle: queue.SimpleQueue[WorkerExecutor] = queue.SimpleQueue()
        for worker in self._all:
            worker.start(rates)
            self._idle.put(worker)
        self._threads: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=self.workers,
                                                                      thread_name_prefix="ditbench-pool")
        self._pending: dict[Future[tuple[Row, Machine]], Case] = {}
        self._machines: dict[tuple[str, str, int], Machine] = {}

    def _run(self, case: Case) -> tuple[Row, Machine]:
        worker = self._idle.get()  # never blocks long: at most `workers` cases are in flight
        try:
            return worker.run(case), worker.machine(case)
        finally:
            self._idle.put(worker)

    def submit(self, cases: Sequence[Case]) -> None:
        if self._threads is None:
            raise RuntimeError("PoolExecutor.submit before start() (or after close())")
        for case in cases:
            self._pending[self._threads.submit(self._run, case)] = case

    def completed(self) -> Iterator[tuple[Case, Row]]:
        while self._pending:
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
            for future in done:
                case = self._pending.pop(future)
                row, machine = future.result()  # run() returns failed rows; only a worker that cannot start raises
                self._machines[(machine.worker, machine.device, machine.threads)] = machine
                yield case, row

    def machines(self) -> list[Machine]:
        return list(getattr(self, "_machines", {}).values())

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers,
                "restarts": sum(worker.restarts for worker in self._all)}

    def close(self) -> None:
        for worker in self._all:  # killing a busy worker ends its thread's wait with a failed row
            worker.close()
        threads = getattr(self, "_threads", None)
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None


def _send(proc: subprocess.Popen[bytes], message: object) -> None:
    assert proc.stdin is not None
    pickle.dump(message, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
    proc.stdin.flush()


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


def _dask_executor(**options: Any) -> Executor:
    """A :class:`~.dask_executor.DaskExecutor`; dask is an optional extra, imported only when chosen."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ValueError("--executor dask needs dask.distributed: pip install 'ditbench[dask]'") from None
    from .dask_executor import DaskExecutor

    return DaskExecutor(**options)


# name → factory taking keyword options: one per name of spec.EXECUTOR_OPTIONS, which says which
# options each takes (dask: scheduler, workers; pool: workers).
EXECUTORS: dict[str, Callable[..., Executor]] = {
    "worker": WorkerExecutor, "in-process": InProcessExecutor, "pool": PoolExecutor, "dask": _dask_executor,
}
