"""``DaskExecutor``: one ``ditbench run`` fanned out over a Dask distributed cluster.

    ditbench run --executor dask --scheduler tcp://HOST:8786   # an existing cluster
    ditbench run --executor dask --workers 2                   # a LocalCluster on this machine

Each case is one Dask task (``client.submit``; rows come back through ``as_completed``). Every
Dask worker process should run one task at a time (``dask worker --nthreads 1``; a LocalCluster
is started that way), and inside it each case runs in that worker's own
:class:`~.executor.WorkerExecutor` child process — the same code path as a local run: the same
``imports`` register the kernels, the per-case timeout really kills (the child is killed and
restarted, the Dask worker lives on), a crash of the kernel kills only the child, and peak RSS
(VmHWM) is the child's own, one case at a time. The child probes its machine once (hostname,
CPU, GPU, torch, calibrated rate, free memory capped by the Dask worker's ``memory_limit``) and
stamps every row with it; the cost-model skips use that worker's own figures.

Faults: a Dask worker that dies mid-case (killed, out of memory) is noticed by the scheduler,
which reruns the case elsewhere; a LocalCluster allows :data:`ALLOWED_FAILURES` such deaths per
case before the case comes back as ``KilledWorker`` and is recorded ``failed`` (failure
``crash``) with the reason. For an external cluster that count is the scheduler's own
``distributed.scheduler.allowed-failures`` (docs/measure.md shows how to set it to 1). Rows
already finished are in the runner's results file and are never lost.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from .budget import Rates
from .cases import Case
from .executor import Executor, Row, WorkerExecutor
from .machine import Machine
from .point import base_row, finish

ALLOWED_FAILURES = 1  # worker deaths a case survives in a LocalCluster (one retry, then recorded failed)
CONNECT_TIMEOUT_S = 30  # seconds to reach an external scheduler


class DaskExecutor(Executor):
    """Run cases on a Dask distributed cluster, one case at a time per worker process.

    Args:
        scheduler: address of a running scheduler (``tcp://host:8786``); or
        workers: start a ``LocalCluster`` of this many worker processes, 1 thread each, on
            127.0.0.1 (closed with the executor).
        imports: kernel modules every worker's measurement process registers besides the
            built-ins and its installed ``ditbench.kernels`` entry points, as for
            :class:`~.executor.WorkerExecutor` (:func:`ditbench.attention.registry.load_kernels`).
        start_timeout_s: seconds a worker's measurement process may take to start or calibrate.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 imports: Sequence[str] = (), start_timeout_s: float = 120.0) -> None:
        if (scheduler is None) == (workers is None):
            raise ValueError("the dask executor needs either a scheduler address (--scheduler tcp://HOST:PORT) "
                             "or a number of local workers (--workers N), not both and not neither")
        if workers is not None and workers < 1:
            raise ValueError(f"workers={workers} must be ≥ 1")
        self.scheduler = scheduler
        self.workers = workers
        self.imports = tuple(imports)
        self.start_timeout_s = start_timeout_s
        self._client: Any = None
        self._cluster: Any = None
        self._token = uuid.uuid4().hex[:8]  # task keys unique to this run on a shared scheduler

    def start(self, rates: Rates | None = None) -> None:
        import dask
        from distributed import Client, LocalCluster, as_completed

        self._rates = rates
        self._cases: dict[str, Case] = {}  # task key → case
        self._machines: dict[tuple[str, str, int], Machine] = {}  # (worker, device, threads) → machine
        if self._client is not None:
            return
        if self.scheduler is not None:
            try:
                self._client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S)
            except OSError as err:
                raise ValueError(f"cannot reach the Dask scheduler at {self.scheduler}: {err}") from None
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address=None)
            self._client = Client(self._cluster)
        self._futures = as_completed()

    @property
    def capacity(self) -> int:
        """Worker threads in the cluster now (workers may join or leave during a run)."""
        return max(1, sum(self._client.nthreads().values())) if self._client is not None else 1

    def submit(self, cases: Sequence[Case]) -> None:
        for case in cases:
            key = f"ditbench-{case.experiment}-{case.kernel}-n{case.n}-{case.case_id}-{self._token}"
            future = self._client.submit(run_on_worker, case, self._rates, self.imports, self.start_timeout_s,
                                         key=key, pure=False)
            self._cases[future.key] = case
            self._futures.add(future)

    def completed(self) -> Iterator[tuple[Case, Row]]:
        from distributed import KilledWorker

        for future in self._futures:
            case = self._cases.pop(future.key)
            try:
                row, machine = future.result()
            except KilledWorker as err:
                row = finish(base_row(case), "failed", f"the Dask worker running this case died each time it was "
                             f"tried ({type(err).__name__}: {err})", failure="crash")
            except Exception as err:  # the task itself broke (e.g. its worker cannot import ditbench)
                row = finish(base_row(case), "failed", f"Dask task failed: {type(err).__name__}: {err}",
                             failure="error")
            else:
                self._machines[(machine.worker, machine.device, machine.threads)] = machine
            future.release()
            yield case, row

    def machines(self) -> list[Machine]:
        return list(getattr(self, "_machines", {}).values())

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "local_cluster": self._cluster is not None}
        if self._client is not None:
            info.update(scheduler=self._client.scheduler.address, workers=len(self._client.nthreads()),
                        allowed_failures=ALLOWED_FAILURES if self._cluster is not None else "scheduler's own")
        return info

    def close(self) -> None:
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if client is not None:
            try:  # stop the workers' measurement processes politely (external workers live on)
                client.run(close_on_worker)
            except (OSError, TimeoutError):
                pass  # a worker that is gone took its measurement process with it
            client.close()
        if cluster is not None:
            cluster.close()


##################################################################################################
# On the worker
##################################################################################################
# One measurement process per Dask worker process and run configuration, kept between tasks.
_LOCAL: dict[tuple[Any, ...], WorkerExecutor] = {}


def run_on_worker(case: Case, rates: Rates | None, imports: tuple[str, ...],
                  start_timeout_s: float) -> tuple[Row, Machine]:
    """The Dask task: run ``case`` in this worker's measurement process; return its row and the
    machine that measured it."""
    from distributed import get_worker

    worker = get_worker()
    key = (rates, imports, start_timeout_s)
    executor = _LOCAL.get(key)
    if executor is None:
        limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        executor = WorkerExecutor(imports=imports, start_timeout_s=start_timeout_s, memory_limit=limit or None,
                                  worker=str(worker.address))
        executor.start(rates)
        _LOCAL[key] = executor
    row = executor.run(case)
    return row, executor.machine(case)


def close_on_worker() -> int:
    """Stop this Dask worker's measurement processes (run on every worker at the end of a run)."""
    count = len(_LOCAL)
    while _LOCAL:
        _LOCAL.popitem()[1].close()
    return count
