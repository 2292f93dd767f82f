"""The fused CPU feature products (ditbench.attention.fused) against float64 references built
from the public monomial table, and the automatic fallback when the extension cannot be built.

Tolerance: each output entry is a sum of N = tokens (key_summary) or r (query_apply) products of
monomials ≤ max|gain·x|^g and values, so recursive summation in the dtype is within
γ_{N+g+1}·Σ|terms| (Higham, Thm 3.1) of the exact sum; the reference computes Σ|terms| too.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from ditbench.attention import fused
from ditbench.attention.features import monomial_table, raw_monomials

needs_fused = pytest.mark.skipif(not fused.available(), reason=f"fused kernel: {fused.unavailable_reason()}")


def _gamma(terms: int, dtype: torch.dtype) -> float:
    u = torch.finfo(dtype).eps / 2
    return terms * u / (1 - terms * u)


def _monomials(x: torch.Tensor, gain: float, degree: int) -> torch.Tensor:
    """float64 (B, r, tokens) monomials of gain·x from the public table."""
    return raw_monomials((gain * x.double()).transpose(-1, -2), monomial_table(x.shape[-1], degree))


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d, degree, tokens, cols", [(8, 4, 300, 9), (3, 2, 1, 5), (5, 0, 70, 2), (4, 1, 33, 7),
                                                     (16, 2, 129, 17), (2, 7, 64, 4)])
def test_key_summary_and_query_apply_match_float64(dtype, d, degree, tokens, cols):
    gen = torch.Generator().manual_seed(d * 100 + degree)
    x = (torch.rand(2, tokens, d, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    vals = (torch.rand(2, tokens, cols, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    gain = 0.7
    m = _monomials(x, gain, degree)  # (2, r, tokens) float64
    z = fused.key_summary(x, vals, gain, degree)  # (2, r, cols)
    ref, size = m @ vals.double(), m.abs() @ vals.double().abs()
    assert z.shape == ref.shape and z.dtype == dtype
    assert ((z.double() - ref).abs() <= _gamma(tokens + degree + 1, dtype) * size).all()

    w = (torch.rand(2, m.shape[1], cols, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    y = fused.query_apply(x, w, gain, degree)  # (2, tokens, cols)
    ref, size = m.transpose(-1, -2) @ w.double(), m.abs().transpose(-1, -2) @ w.double().abs()
    assert y.shape == ref.shape
    assert ((y.double() - ref).abs() <= _gamma(m.shape[1] + degree + 1, dtype) * size).all()


@needs_fused
@pytest.mark.parametrize("block", [32, 64, 1000])
def test_tile_size_changes_only_rounding(block):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 257, 6, generator=gen, dtype=torch.float64)
    vals = torch.rand(1, 257, 3, generator=gen, dtype=torch.float64)
    a, b = fused.key_summary(x, vals, 1.0, 3, block), fused.key_summary(x, vals, 1.0, 3, 0)
    size = _monomials(x, 1.0, 3).abs() @ vals
    assert ((a - b).abs() <= 2 * _gamma(257 + 4, torch.float64) * size).all()


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d, degree, tokens, cols", [(8, 4, 300, 8), (3, 2, 1, 1), (5, 0, 70, 2), (4, 1, 33, 6)])
def test_implicit_ones_and_normalised_output_match_the_explicit_forms(dtype, d, degree, tokens, cols):
    # One thread: tiles are then summed in order, so both forms do the same float operations.
    gen = torch.Generator().manual_seed(d * 10 + degree)
    x = (torch.rand(2, tokens, d, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    vals = (torch.rand(2, tokens, cols, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        z = fused.key_summary(x, vals, 0.7, degree, ones=True)  # (2, r, cols + 1)
        explicit = fused.key_summary(x, torch.cat([vals, torch.ones_like(vals[..., :1])], dim=-1), 0.7, degree)
        assert torch.equal(z, explicit)
        w = z.abs() + 0.1  # positive normalisers
        out, worst = fused.query_normalised(x, w, 0.6, degree)  # (2, tokens, cols), ()
        y = fused.query_apply(x, w, 0.6, degree)  # (2, tokens, cols + 1)
        assert torch.equal(out, y[..., :cols] / y[..., cols:]) and float(worst) == float(y[..., cols].amin())
        w[1, 0, cols] = float("nan")  # one NaN normaliser row: the worst normaliser must say so
        assert torch.isnan(fused.query_normalised(x, w, 0.6, degree)[1])
    finally:
        torch.set_num_threads(threads)


@needs_fused
def test_bad_inputs_are_refused_with_the_reason():
    x = torch.rand(1, 4, 3)
    with pytest.raises(RuntimeError, match="share a dtype"):
        fused.key_summary(x, torch.rand(1, 4, 2, dtype=torch.float64), 1.0, 2)
    with pytest.raises(RuntimeError, match="w must be"):
        fused.query_apply(x, torch.rand(1, 5, 2), 1.0, 2)
    with pytest.raises(RuntimeError, match="C ≥ 2"):
        fused.query_normalised(x, torch.rand(1, 10, 1), 1.0, 2)


@needs_fused
def test_a_table_that_does_not_describe_the_degree_is_refused():
    # The kernel reads the last d steps as the (never built) top degree; a table for another
    # degree would make it read rows it did not build, so the op checks the table first.
    ops, x, vals = fused._ops(), torch.rand(1, 8, 3), torch.rand(1, 8, 2)
    with pytest.raises(RuntimeError, match="d steps per degree"):
        ops.key_summary(x, vals, 1.0, fused.build_steps(3, 3), 2, monomial_table(3, 2).rank, 0)
    with pytest.raises(RuntimeError, match="must end at row rank"):
        ops.query_apply(x, torch.rand(1, 9, 2), 1.0, fused.build_steps(3, 2), 2, 9, 0)


def test_missing_compiler_falls_back_with_a_reason(monkeypatch):
    monkeypatch.setattr(fused, "_load", fused._load.__wrapped__)  # uncached: re-decide under the patch
    monkeypatch.delenv(fused.ENV, raising=False)
    monkeypatch.setenv("CXX", "no-such-compiler-for-ditbench")
    assert fused._load() == (None, "no C++ compiler ('no-such-compiler-for-ditbench' not on PATH)")
    monkeypatch.setenv(fused.ENV, "0")
    assert "forces the pure-torch path" in fused._load()[1]


def test_a_stale_build_lock_is_removed_and_a_fresh_one_kept(tmp_path) -> None:
    """A compile killed mid-build leaves torch's lock file behind; every later build would wait on
    it forever. Locks older than STALE_LOCK_S go; a young one (a build in progress) stays."""
    import os
    import time

    lock = tmp_path / "lock"
    lock.touch()
    assert not fused._remove_stale_lock(lock)
    assert lock.exists()
    old = time.time() - fused.STALE_LOCK_S - 1
    os.utime(lock, (old, old))
    assert fused._remove_stale_lock(lock)
    assert not lock.exists()
    assert not fused._remove_stale_lock(lock)  # already gone: nothing to do


_THREADS_PROBE = """
import os, sys, torch
from ditbench.attention import fused
torch.set_num_threads(int(sys.argv[1]))
def tasks():
    return len(os.listdir("/proc/self/task"))
x, v = torch.rand(1, 4096, 4), torch.rand(1, 4096, 3)
fused.key_summary(x[:, :8], v[:, :8], 1.0, 2)  # load the extension (one tile: one thread)
before = tasks()
for _ in range(3):
    fused.query_apply(x, fused.key_summary(x, v, 1.0, 3), 1.0, 3)
print(tasks() - before)
"""


@pytest.mark.slow  # two fresh interpreters, each importing torch and loading the extension
@needs_fused
@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2,
                    reason="counts threads through Linux /proc on a machine with ≥ 2 CPUs")
def test_the_fused_ops_use_torchs_thread_count():
    # The extension links its own OpenMP runtime, whose default team (one thread per CPU) ignores
    # torch.set_num_threads; the ops must run torch's count, or a row's `threads` column lies.
    def new_threads(threads: int) -> int:
        out = subprocess.run([sys.executable, "-c", _THREADS_PROBE, str(threads)], capture_output=True, text=True,
                             check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        return int(out.stdout.split()[-1])

    assert new_threads(1) == 0  # no OpenMP team beyond the calling thread
    assert new_threads(2) >= 1  # the probe itself can see a team when one is asked for


@pytest.mark.skipif(os.environ.get(fused.ENV) == "0" or shutil.which(os.environ.get("CXX", "c++")) is None,
                    reason="no C++ compiler here (or DITBENCH_FUSED=0): the pure-torch fallback is the design")
def test_a_present_compiler_builds_the_extension():
    # Otherwise a broken source would only turn every fused test into a skip.
    assert fused.available(), fused.unavailable_reason()
