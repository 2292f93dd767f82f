"""Shared by the fuzz suites (tests/test_fuzz_*.py): what counts as a clear error, a hang guard, and
an outcome log.

Every fuzzed call must end in exactly one of
* a **clear error**: ValueError (bad input: the value and the limit), ditbench.errors.KernelRefusal
  (unsupported here, with the reason) or FloatingPointError (a kernel refusing to return NaN/inf),
  with a non-empty message;
* a **result** that the suite then checks (finite, right shape, and against a float64 reference or
  a proven bound where one applies).
Anything else — another exception type, a NaN/inf output, a call running past the hang limit — fails
the test. With ``DITBENCH_FUZZ_LOG=path`` every outcome is appended to ``path`` as one JSON line
(``{"suite", "target", "outcome"}``), which is how the counts in the closing report were made.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from ditbench.errors import KernelRefusal

CLEAR_ERRORS = (ValueError, KernelRefusal, FloatingPointError)
# One tiny call using more CPU than this is a hang (the planner bug ran > 150 s). CPU time, not wall
# time: on a loaded machine a call's wall time stretches with the other jobs, its CPU time does not
# (a legitimate call here — the largest degree search, Remez on a radius near the limit — uses a few
# CPU seconds; torch's threads add up, so a call on 2 threads counts double).
HANG_LIMIT_CPU_S = 60


@contextlib.contextmanager
def hang_guard(cpu_seconds: float = HANG_LIMIT_CPU_S) -> Iterator[None]:
    """Raise TimeoutError inside the block once the process has used ``cpu_seconds`` of CPU time
    in it (ITIMER_PROF: user + system time of all threads; the signal is handled in the main thread)."""
    def _alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"call used {cpu_seconds} s of CPU time without finishing (a hang)")

    previous = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def attempt(call: Callable[[], Any]) -> tuple[str, Any]:
    """``("error", exc)`` for a clear error, ``("result", value)`` otherwise; any other exception
    (including a hang) propagates and fails the test."""
    with hang_guard():
        try:
            return "result", call()
        except CLEAR_ERRORS as err:
            assert str(err).strip(), f"{type(err).__name__} without a message"
            return "error", err


def record(suite: str, target: str, outcome: str) -> None:
    """Append one outcome to $DITBENCH_FUZZ_LOG (no-op when unset)."""
    path = os.environ.get("DITBENCH_FUZZ_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"suite": suite, "target": target, "outcome": outcome}) + "\n")
