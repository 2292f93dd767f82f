"""Deliberately misbehaving kernels for testing the runner (slow, raising, crashing, NaN, fussy).

Test-only (not in the package). A kernel plugin like any other: importing it registers the
kernels. Tests import it here and hand it to the worker through the one registration path
(:func:`ditbench.attention.registry.load_kernels`, via ``WorkerExecutor(imports=("fake_kernels",))``
with this folder on the worker's PYTHONPATH: see :func:`worker_path`).
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from torch import Tensor

import pytest

from ditbench import theory
from ditbench.attention import Kernel, Problem, register, uniform_attention

MODULE = __name__  # what the worker imports

SLEEP_S = 600.0  # far beyond any test timeout: finishing at all means the kill failed


def _slow(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    time.sleep(SLEEP_S)
    return uniform_attention(q, k, v)


NAPS: list[int] = []  # one entry per call of fake_napping (its n), for tests that count calls
NAP_S = 0.01


def _napping(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    NAPS.append(q.shape[-2])
    time.sleep(NAP_S)
    return uniform_attention(q, k, v)


def _raises(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    raise RuntimeError("fake kernel refuses on purpose")


def _segfault(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("unreachable")


# The worker-killing fakes act only where a test asked for it (never in a test's own process).
KILL_ENV = "DITBENCH_FAKE_KILL_PARENT"  # "1": the kill_* fakes kill the process that started theirs
MARKER_ENV = "DITBENCH_FAKE_KILL_MARKER"  # a file: fake_kill_parent_once kills only while it is absent


def _kill_parent() -> None:
    if os.environ.get(KILL_ENV) != "1":
        raise RuntimeError(f"fake worker killer is disarmed ({KILL_ENV} is not 1)")
    os.kill(os.getppid(), signal.SIGKILL)  # the Dask worker that runs this measurement process
    time.sleep(SLEEP_S)  # killed with it (the measurement process dies with its parent)


def _kill_parent_always(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    _kill_parent()
    raise AssertionError("unreachable")


def _kill_parent_once(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    marker = os.environ.get(MARKER_ENV, "")
    if marker and not os.path.exists(marker):
        with open(marker, "x"):
            pass
        _kill_parent()
    return uniform_attention(q, k, v)


def _nan(q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None) -> Tensor:
    out = uniform_attention(q, k, v).clone()  # (n, dv)
    out[0, 0] = float("nan")
    return out


def _small_only(p: Problem, params: Mapping[str, Any]) -> list[str]:
    return [] if p.n <= 64 else [f"fake_small_only supports n ≤ 64, not n={p.n}"]


def _huge_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    return theory.Cost(flops=1e30, bytes=1e30)


FAKES = (
    Kernel(name="fake_slow", fn=_slow, description="sleeps 600 s"),
    Kernel(name="fake_napping", fn=_napping, description="sleeps 10 ms, then the uniform answer (counts its calls)"),
    Kernel(name="fake_raises", fn=_raises, description="raises RuntimeError"),
    Kernel(name="fake_segfault", fn=_segfault, description="kills its process with SIGSEGV"),
    Kernel(name="fake_nan", fn=_nan, description="uniform answer with one NaN"),
    Kernel(name="fake_small_only", fn=uniform_attention, limits=_small_only, description="refuses n > 64"),
    Kernel(name="fake_huge", fn=uniform_attention, cost=_huge_cost, description="cost model says 1e30 FLOP"),
    Kernel(name="fake_kill_parent", fn=_kill_parent_always, description="kills its worker's parent (armed by env)"),
    Kernel(name="fake_kill_parent_once", fn=_kill_parent_once,
           description="kills its worker's parent the first time (marker file), then the uniform answer"),
)
for _kernel in FAKES:
    register(_kernel)


def worker_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put this folder on PYTHONPATH so a worker process can import this module."""
    here = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
