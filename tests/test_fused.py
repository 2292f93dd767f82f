"""The fused CPU feature products (ditbench.attention.fused) against float64 references built
from the public monomial table, and the automatic fallback when the extension cannot be built.

Tolerance: each output entry is a sum of N = tokens (key_summary) or r (query_apply) products of
monomials ≤ max|gain·x|^g and values, so recursive summation in the dtype is within
γ_{N+g+1}·Σ|terms| (Higham, Thm 3.1) of the exact sum; the reference computes Σ|terms| too.
"""
from __future__ import annotations

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
def test_bad_inputs_are_refused_with_the_reason():
    x = torch.rand(1, 4, 3)
    with pytest.raises(RuntimeError, match="share a dtype"):
        fused.key_summary(x, torch.rand(1, 4, 2, dtype=torch.float64), 1.0, 2)
    with pytest.raises(RuntimeError, match="w must be"):
        fused.query_apply(x, torch.rand(1, 5, 2), 1.0, 2)


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
