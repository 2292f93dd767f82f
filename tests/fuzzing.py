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
HANG_LIMIT_S = 20  # one tiny call taking longer than this is a hang (the planner bug took > 150 s)


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_LIMIT_S) -> Iterator[None]:
    """Raise TimeoutError inside the block after ``seconds`` (SIGALRM; main thread only)."""
    def _alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"call did not finish within {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


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
