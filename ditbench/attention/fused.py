"""The fused CPU feature products (``csrc/feature_products.cpp``), compiled on first use.

Two ops build each tile of symmetric-monomial features in cache and consume it at once
(no (tokens × r) feature matrix in memory):

* ``key_summary(x, vals, gain)`` → Z ``(B, r, C)`` = Σ_t M(gain·x_t) ⊗ vals_t (``ones=True``:
  vals with an implicit column of ones appended, C + 1 columns, no concatenated copy)
* ``query_apply(x, w, gain)`` → Y ``(B, n, C)`` = M(gain·x_t)ᵀ w
* ``query_normalised(x, w, gain)`` → (Y[..., :C−1] / Y[..., C−1] ``(B, n, C − 1)``, the smallest
  normaliser Y[..., C−1], NaN if any is NaN): the attention output written once, no (n, C) Y

with M(x) the r = C(g + d, d) monomials of degree ≤ g in :func:`features.monomial_table`'s row
order. :func:`available` compiles the extension with ``torch.utils.cpp_extension.load`` (gcc,
``-O3 -march=native -fopenmp``) into torch's extension cache, keyed by the source and this CPU's
instruction-set flags, so later processes load it in well under a second. When no compiler is
present or the build fails, :func:`available` is False and :func:`unavailable_reason` says why;
the kernels then use their pure-torch path and record ``impl = "torch"``. ``DITBENCH_FUSED=0``
forces the fallback (and ``=1`` makes a failed build an error instead of a silent fallback).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .features import MonomialTable, monomial_table

SOURCE = Path(__file__).with_name("csrc") / "feature_products.cpp"
ENV = "DITBENCH_FUSED"
# torch's build lock (a FileBaton) is never released when a compiling process is killed, and every
# later process then waits on it forever. A build takes well under a minute even on a loaded
# 2-core VM, so a lock older than this is stale and is removed before building.
STALE_LOCK_S = 600.0


def _cpu_flags() -> str:
    """The CPU's instruction-set flags (the build uses -march=native, so a cache shared between
    different CPUs must not reuse a binary)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def _load() -> tuple[Any, str]:
    """(the op namespace or None, the reason it is None)."""
    if os.environ.get(ENV, "") == "0":
        return None, f"{ENV}=0 forces the pure-torch path"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return None, f"no C++ compiler ({compiler!r} not on PATH)"
    try:
        from torch.utils import cpp_extension

        tag = hashlib.sha1(SOURCE.read_bytes() + _cpu_flags().encode() + torch.__version__.encode()).hexdigest()[:12]
        name = f"ditbench_fused_{tag}"
        build = Path(cpp_extension._get_build_directory(name, verbose=False))
        _remove_stale_lock(build / "lock")
        cpp_extension.load(
            name=name, sources=[str(SOURCE)], is_python_module=False, verbose=False, build_directory=str(build),
            extra_cflags=["-O3", "-march=native", "-fopenmp"], extra_ldflags=["-fopenmp"],
        )
        return torch.ops.ditbench_fused, ""
    except Exception as err:  # a failed build is a reason to fall back, recorded; DITBENCH_FUSED=1 re-raises
        if os.environ.get(ENV, "") == "1":
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return None, f"building {SOURCE.name} failed: {type(err).__name__}: {first[:300]}"


def _remove_stale_lock(lock: Path, max_age_s: float = STALE_LOCK_S) -> bool:
    """Remove a build lock left by a killed compile (older than ``max_age_s``); True if removed."""
    try:
        if time.time() - lock.stat().st_mtime <= max_age_s:
            return False
        lock.unlink()
    except FileNotFoundError:
        return False
    return True


def available() -> bool:
    """True when the extension is built (compiling it on the first call, ~10–40 s once)."""
    return _load()[0] is not None


def unavailable_reason() -> str:
    """Why :func:`available` is False ('' when it is True)."""
    return _load()[1]


def _ops() -> Any:
    ops, reason = _load()
    if ops is None:
        raise RuntimeError(f"the fused CPU kernel is not available: {reason}")
    return ops


@lru_cache(maxsize=64)
def build_steps(d: int, degree: int) -> Tensor:
    """The table's monomial recurrences as a contiguous ``(S, 4)`` int32 tensor (dst, src, count, coord)."""
    table: MonomialTable = monomial_table(d, degree)
    steps = [step for level in table.levels for step in level]
    return torch.as_tensor(np.asarray(steps, dtype=np.int32).reshape(-1, 4))


def key_summary(x: Tensor, vals: Tensor, gain: float, degree: int, block: int = 0, ones: bool = False) -> Tensor:
    """Σ_t M(gain·x_t) ⊗ vals_t.  x ``(B, m, d)``, vals ``(B, m, C)`` → ``(B, r, C)``, or with
    ``ones`` → ``(B, r, C + 1)`` as if vals had a last column of ones (CPU, one dtype)."""
    d = x.shape[-1]
    return _ops().key_summary(x.contiguous(), vals.contiguous(), float(gain), build_steps(d, degree), degree,
                              monomial_table(d, degree).rank, int(block), bool(ones))


def query_normalised(x: Tensor, w: Tensor, gain: float, degree: int, block: int = 0) -> tuple[Tensor, Tensor]:
    """(Y[..., :C−1] / Y[..., C−1], min Y[..., C−1]) for Y = M(gain·x_t)ᵀ w.  x ``(B, n, d)``,
    w ``(B, r, C)`` with C ≥ 2 → ``(B, n, C − 1)`` and a float64 scalar (NaN if any normaliser is)."""
    d = x.shape[-1]
    return _ops().query_normalised(x.contiguous(), w.contiguous(), float(gain), build_steps(d, degree), degree,
                                   monomial_table(d, degree).rank, int(block))


def query_apply(x: Tensor, w: Tensor, gain: float, degree: int, block: int = 0) -> Tensor:
    """M(gain·x_t)ᵀ w.  x ``(B, n, d)``, w ``(B, r, C)`` → ``(B, n, C)`` (CPU, one dtype)."""
    d = x.shape[-1]
    return _ops().query_apply(x.contiguous(), w.contiguous(), float(gain), build_steps(d, degree), degree,
                              monomial_table(d, degree).rank, int(block))
