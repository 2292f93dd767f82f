"""The error taxonomy: a kernel *refusing* a case is not a kernel *failing* on it.

* :class:`KernelRefusal` — "unsupported here, with a reason": the kernel (or the workload that
  would call it) declines the case before computing anything, because of what the case is (a
  dtype or device it does not support, a rank too large for memory, no polynomial degree that
  reaches the target ε on this radius). The runner records a ``skipped`` row with the reason.
* Everything else a kernel raises is a **failure**: a bug or a broken environment. The runner
  records a ``failed`` row with the exception type, text and where it was raised, and it
  surfaces in the summary and the report. Never catch ``ValueError`` (or ``Exception``) to turn
  it into "unsupported".
"""
from __future__ import annotations


class KernelRefusal(Exception):
    """A kernel declines a case it does not support, saying why (``str(err)`` is the reason).

    Raise it only for a property of the case (sizes, dtype, device, radius, memory), checked
    before any work; the message names the value and the limit, e.g.
    ``"rank 43,758 needs 5.6 GB of features; the budget is 2.0 GB"``.
    """
