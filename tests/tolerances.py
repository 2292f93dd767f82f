"""Derived tolerances and a diagnostic ``assert_close`` for the test suite.

Every tolerance in these tests is meant to be *derived*: unit roundoff × operation count × the
magnitudes involved (Higham's γ_n), a kernel's proven error bound, or the error of a naive
same-precision baseline. Two project machines (AMD EPYC, Intel Xeon AVX-512) use different libm /
BLAS code paths that differ by ulps, so a constant that happens to hold on one CPU is not a bound.

``assert_close`` fails with the worst element (index, both values, its error, the allowed error),
how many elements fail and what share, like xformers' ``tests/utils.py`` ``assert_allclose``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

# Largest error, in ulps, that we assume of one elementary-function evaluation (exp, pow, sin, ...).
# glibc documents < 1 ulp for double exp/pow/sin/cos; numpy's AVX-512 SVML paths and torch's Sleef
# vector paths document ≤ 4 ulp (numpy 1.22 release notes), so 4 is the bound that holds everywhere.
LIBM_ULPS = 4


def unit_roundoff(dtype: torch.dtype | np.dtype | type = torch.float64) -> float:
    """u = eps/2: the relative error of one correctly rounded operation in ``dtype``."""
    if isinstance(dtype, torch.dtype):
        return torch.finfo(dtype).eps / 2
    return float(np.finfo(dtype).eps) / 2


def gamma(n: float, dtype: torch.dtype | np.dtype | type = torch.float64) -> float:
    """Higham's γ_n = n·u / (1 − n·u): the relative error bound of n chained roundings (a length-n
    dot product or sum, in any order), Higham, *Accuracy and Stability*, Lemma 3.1."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"gamma({n}) is unbounded in {dtype}: n·u = {nu} ≥ 1")
    return nu / (1 - nu)


def orthonormality_bound(m: int, n: int, dtype: torch.dtype = torch.float64) -> float:
    """Max-norm bound of Q̂ᵀQ̂ − I for the m×n orthonormal factor Q̂ of a Householder QR computed in
    ``dtype``, the Gram product Q̂ᵀQ̂ itself evaluated in ``dtype`` included.

    Higham, *Accuracy and Stability* (2nd ed.) §19.3: Q̂ = Q + ΔQ with Q exactly orthonormal and
    ‖ΔQ‖_F ≤ √n·γ̃_{mn}; γ̃_k = c·k·u/(1 − c·k·u) with a small constant c, here c = 4 (each of the n
    reflections costs an entry ≤ 4 roundings: the norm, the dot product, the scaling, the update).
    Then |(Q̂ᵀQ̂ − I)_ij| ≤ 2‖ΔQ‖ + ‖ΔQ‖², and the length-m dot product adds γ_m·(1 + ‖ΔQ‖)²."""
    dq = qr_factor_defect(m, n, dtype)
    return 2 * dq + dq**2 + gamma(m, dtype) * (1 + dq) ** 2


def qr_factor_defect(m: int, n: int, dtype: torch.dtype = torch.float64) -> float:
    """‖Q̂ − Q‖_F ≤ √n·γ̃_{mn} for the m×n orthonormal factor Q̂ of a Householder QR in ``dtype``
    (Q exactly orthonormal; the constant as in :func:`orthonormality_bound`)."""
    return math.sqrt(n) * gamma(4 * m * n, dtype)


def _as_float64(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def assert_close(actual: Any, expected: Any, *, atol: Any = 0.0, rtol: float = 0.0, what: str = "") -> None:
    """Assert |actual − expected| ≤ atol + rtol·|expected| element-wise (atol may be an array that
    broadcasts: a per-element bound). NaN anywhere fails; infinities must match exactly.

    On failure the message names the worst element (largest error / allowed ratio), both values,
    that error and its allowance, and how many elements fail out of how many.
    """
    a, e = _as_float64(actual), _as_float64(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: shape {a.shape} != expected {e.shape}")
    relative = rtol * np.abs(e) if rtol else 0.0  # (rtol = 0: no 0·inf = NaN allowance)
    allowed = np.broadcast_to(_as_float64(atol) + relative, a.shape)
    with np.errstate(invalid="ignore"):
        err = np.abs(a - e)
        same_inf = np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e))
        err = np.where(same_inf, 0.0, err)
        bad = ~(err <= allowed)  # NaN compares False: a NaN always fails
    if not bad.any():
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isnan(err), np.inf, err / np.where(allowed > 0, allowed, np.finfo(np.float64).tiny))
    idx = np.unravel_index(int(np.argmax(ratio)), a.shape) if a.ndim else ()
    at = tuple(int(i) for i in idx)
    raise AssertionError(
        f"{what + ': ' if what else ''}{int(bad.sum())} of {bad.size} elements "
        f"({bad.mean():.1%}) beyond the tolerance (atol={_fmt(atol)}, rtol={rtol:.3g}); "
        f"worst at {at}: actual={float(a[idx])!r}, expected={float(e[idx])!r}, |err|={err[idx]:.6g} "
        f"> allowed {allowed[idx]:.6g} ({float(ratio[idx]):.3g}× the allowance)"
    )


def _fmt(atol: Any) -> str:
    arr = _as_float64(atol)
    return f"{float(arr):.3g}" if arr.ndim == 0 else f"array(max {float(arr.max()):.3g})"


def max_abs(x: Any) -> float:
    """‖x‖_max as a Python float (the magnitude that scales an absolute rounding bound)."""
    return float(np.abs(_as_float64(x)).max(initial=0.0))


def softmax_attention_bound(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                            dtype: torch.dtype | None = None, *, rescales: int = 0) -> float:
    """Worst-case max-norm rounding error of softmax(scale·q kᵀ) v evaluated in ``dtype`` (default:
    q's dtype) by the max-subtracted two-pass algorithm, from the inputs' magnitudes alone.

    With L = max_ij |scale|·Σ_t |q_it||k_jt| (the largest logit a dot product can accumulate):
    each logit errs by ≤ (γ_d + 3u)·L (the dot product, the scale, the max subtraction of two values
    ≤ L); exp adds LIBM_ULPS ulp; each of ``rescales`` online-softmax rescalings (flash kernels
    multiply running sums by exp(m_old − m_new)) adds another exp, a subtraction and a product.
    ``rescales=m`` bounds any blocking of the keys (one rescaling per key at worst). A relative
    weight error δ moves a softmax average by ≤ 2δ/(1 − δ)·‖V‖_max (DESIGN §3.1, item 4); the
    numerator and denominator sums over m keys add γ_m each, the division u.
    A row max that is itself off shifts every logit of the row equally and changes nothing.
    """
    reach = abs(scale) * float((q.double().abs() @ k.double().abs().transpose(-1, -2)).max())  # L
    return softmax_rounding_bound(k.shape[-2], q.shape[-1], reach, max_abs(v), q.dtype if dtype is None else dtype,
                                  rescales=rescales)


def softmax_rounding_bound(m: int, d: int, reach: float, v_max: float, dtype: torch.dtype, *,
                           rescales: int = 0) -> float:
    """:func:`softmax_attention_bound` from sizes and magnitudes: m keys, head dim d, logit reach
    L ≥ |scale|·Σ_t |q_it||k_jt| (e.g. scale·d·B² for entries in [−B, B]), ‖V‖_max = v_max."""
    dt, n_keys, u = dtype, m, unit_roundoff(dtype)
    per_exp = LIBM_ULPS * 2 * u
    delta_logit = (gamma(d, dt) + 3 * u) * reach
    # A rescaling's argument m_old − m_new (two logits ≤ L) rounds by ≤ 2u·L; the factors telescope,
    # so the logits' own errors enter once. Each rescaling also multiplies the running sums (u).
    exponent = delta_logit + rescales * 2 * u * reach
    if exponent >= 1:  # expm1(≥ 1) > 1: vacuous already (and math.expm1 overflows past ~709)
        raise ValueError(f"rounding bound is vacuous here: logit error {exponent} ≥ 1 (logit reach {reach})")
    delta_w = math.expm1(exponent) + (1 + rescales) * per_exp + rescales * u
    if delta_w >= 1:
        raise ValueError(f"rounding bound is vacuous here: weight error {delta_w} ≥ 1 (logit reach {reach})")
    return (2 * delta_w / (1 - delta_w) + 2 * gamma(n_keys, dt) + u) * v_max


def weighted_mean_bound(w: torch.Tensor, dw: torch.Tensor, v: torch.Tensor, dtype: torch.dtype) -> float:
    """Max-norm error bound of Σ_j w_ij v_j / Σ_j w_ij for non-negative weights ``w (n, m)`` computed
    with per-element absolute errors ≤ ``dw (n, m)``, evaluated in ``dtype``: a weight error moves a
    row by ≤ 2·Σ_j dw_ij / (Σ_j w_ij − Σ_j dw_ij)·‖V‖_max (as DESIGN §3.1, item 4), and the two sums
    over m terms add γ_m each, the division u."""
    w64, dw64 = w.double(), dw.double()
    slack = dw64.sum(-1)  # (n,)
    room = w64.sum(-1) - slack  # (n,)
    if bool((room <= 0).any()):
        raise ValueError("weighted_mean_bound is vacuous: a row's weight errors reach its total weight")
    rel = float((2 * slack / room).max())
    return (rel + 2 * gamma(w.shape[-1], dtype) + unit_roundoff(dtype)) * max_abs(v)


__all__ = ["LIBM_ULPS", "assert_close", "gamma", "max_abs", "orthonormality_bound", "qr_factor_defect",
           "softmax_attention_bound", "softmax_rounding_bound", "unit_roundoff", "weighted_mean_bound"]

