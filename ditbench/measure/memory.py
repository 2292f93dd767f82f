"""Peak memory of one kernel call, measured for real (not predicted).

CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (method
``cuda_max_allocated``): peak bytes held by the caching allocator during the call, minus what
was allocated before it.

CPU (Linux, method ``vmhwm``): the process's resident-set high-water mark. Writing "5" to
``/proc/self/clear_refs`` resets ``VmHWM`` in ``/proc/self/status`` to the current RSS, so in a
long-lived worker each call gets its own peak: peak_bytes = VmHWM after the call − VmRSS just
before it (inputs already allocated). ``malloc_trim(0)`` first returns freed heap pages to the
OS, so memory freed by earlier cases cannot hide this call's allocations. This counts every
page the call touches (output, temporaries, allocator slack), at 4 KiB page granularity.
Elsewhere the method is ``unavailable`` and peak_bytes is left empty.
"""
from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

T = TypeVar("T")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), flags=re.MULTILINE)
    if match is None:
        raise OSError(f"{key} not found in {_STATUS}")
    return int(match.group(1))


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: peaks may be under-reported when freed memory is reused (documented)


# glibc malloc policy of a measurement worker (mallopt parameters, <malloc.h>). By default glibc
# adapts both thresholds to the program's history: a freed chunk above the mmap threshold raises
# it (up to 32 MiB), and free memory at the top of the heap beyond twice that is returned to the
# OS. Kernels that allocate and free many temporaries per call (the streamed exact kernel's 1 MiB
# tiles, the closed-form gradient's n×n products) then page-fault a varying share of them on every
# call, depending on what earlier cases left in the heap — measured at n = 16384 (exact): 0 to 2 GB
# of minor faults per call in one process, and one pass of a point timed up to 1.7× another.
# Fixing the thresholds makes every call after the warm-up reuse the heap the warm-up grew. The
# mmap threshold cannot exceed 32 MiB, and a chunk at or above it is mmapped, so page-faulted,
# on every call: polynomial_autograd_gradient at n = 2^21 (n×d float32 = 32 MiB) took 24,000–
# 70,000 minor faults per call (median per run) and sat 15–25 % above its smaller sizes' time per
# row in session 6's first quiet runs. So the worker also sets M_MMAP_MAX = 0 — no chunk is ever
# mmapped — and the large ones are reused from the heap like the small ones.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest allowed value (moot once M_MMAP_MAX is 0)
TRIM_THRESHOLD_BYTES = (1 << 31) - 1  # never trim on free (malloc_trim in measure_peak still does)


_heap_policy = "adaptive"  # this process's policy, written into every row (column heap_policy)


def fix_heap_policy() -> bool:
    """Fix glibc's mmap and trim thresholds in this process (see above); False where it is not
    glibc or mallopt refuses (the worker then runs with the default, adaptive policy)."""
    global _heap_policy
    try:
        libc = ctypes.CDLL("libc.so.6")
        fixed = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)) and bool(libc.mallopt(_M_MMAP_MAX, 0))
    except (OSError, AttributeError):
        fixed = False
    if fixed:
        _heap_policy = "fixed"
    return fixed


def heap_policy() -> str:
    """"fixed" after :func:`fix_heap_policy` succeeded in this process, else "adaptive" (glibc's default)."""
    return _heap_policy


def minor_faults() -> int:
    """Minor page faults of this process so far (getrusage; 0 where unavailable)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def cpu_method() -> str:
    """"vmhwm" where the high-water mark can be reset (Linux ≥ 4.0), else "unavailable"."""
    try:
        _CLEAR_REFS.write_text("5")
        _status_kib("VmHWM")
    except OSError:
        return "unavailable"
    return "vmhwm"


def measure_peak(fn: Callable[[], T], device: str) -> tuple[T, int | None, str]:
    """Call ``fn()`` once and return ``(result, peak_bytes, method)``; peak_bytes is extra memory
    beyond what was in use before the call (None where no method is available)."""
    # No gc.collect(): tensors are freed by reference counting, and a full collection costs
    # ~0.3 s with torch loaded, more than most small points.
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        result = fn()
        torch.cuda.synchronize()
        return result, int(torch.cuda.max_memory_allocated() - before), "cuda_max_allocated"
    method = cpu_method()
    if method != "vmhwm":
        return fn(), None, method
    _trim_heap()
    _CLEAR_REFS.write_text("5")  # VmHWM := current VmRSS
    before = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    return result, max(0, peak - before) * 1024, method

