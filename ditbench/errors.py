"""The error taxonomy: a kernel *refusing* a case is not a kernel *failing* on it.

* :class:`KernelRefusal` — "unsupported here, with a reason": the kernel (or the workload that
  would call it) declines the case before computing anything, because of what the case is (a
  dtype or device it does not support, a rank too large for the memory budget, no polynomial
  degree that reaches the target ε on this radius, no entry bound to size the polynomial by).
  The runner records a ``skipped`` row with the reason; a kernel's ``limits`` hook returns it as
  one of its reasons.
* Everything else a kernel raises is a **failure**: a bug, bad input, or arithmetic that went
  wrong. The runner records a ``failed`` row with the exception type, text and where it was
  raised, and it surfaces in the summary and the report. Code never catches ``ValueError`` (or
  ``Exception``) to turn it into "unsupported"; it catches :class:`KernelRefusal`.
* :class:`NormaliserError` is the one way a non-positive (or non-finite) attention normaliser is
  reported, by every kernel that divides by one (:func:`check_normalisers`): a failure, since the
  kernel accepted the case and then could not return a finite answer.

Torch-free (imported by the schema-level code too).
"""
from __future__ import annotations


class KernelRefusal(ValueError):
    """A kernel declines a case it does not support, saying why (``str(err)`` is the reason).

    Raise it only for a property of the case (sizes, dtype, device, radius, memory), checked
    before any work; the message names the value and the limit, e.g.
    ``"degree 9 (rank 48620, eps=0.001, radius=7.2) needs 371.0 MiB > memory_budget=256.0 MiB"``.
    It is a ValueError (the case's values are outside what the kernel supports), so callers that
    catch ValueError keep working; ditbench itself catches KernelRefusal only.
    """


class NormaliserError(FloatingPointError):
    """A row normaliser came out ≤ 0 or non-finite: the kernel refuses to return NaN/inf."""


def check_normalisers(worst: float, *, kernel: str, bad: int | None = None, total: int | None = None,
                      context: str = "", hint: str = "") -> None:
    """Raise :class:`NormaliserError` unless ``worst`` (the least row normaliser, or any offending
    one) is positive and finite. ``bad``/``total``: how many of how many failed, when known; ``context`` (e.g.
    "at degree 6, radius 3, dtype torch.float32") and ``hint`` (what to change) complete the message."""
    if worst > 0 and worst != float("inf"):  # False for NaN too
        return
    count = f"{bad} of {total} " if bad is not None and total is not None else ""
    where = f" {context}" if context else ""
    advice = f"; {hint}" if hint else ""
    raise NormaliserError(f"{kernel}: {count}row normaliser(s) ≤ 0 or non-finite (worst {worst:.3g}){where}: "
                          f"refusing to return NaN/inf{advice}")
