"""Input validation shared by every kernel: clear errors naming the value and the limit."""
from __future__ import annotations

import math

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_finite(name: str, x: Tensor) -> None:
    """Raise ValueError if ``x`` holds NaN or ±inf (naming the tensor and how many)."""
    if x.numel() == 0 or bool(torch.isfinite(x.abs().amax())):
        return  # NaN and ±inf both survive the max of |x|: one cheap reduction on the hot path
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{name} has {bad} non-finite value(s) out of {x.numel()}; inputs must be finite")


def check_float(name: str, x: Tensor) -> None:
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} has dtype {x.dtype}; expected one of {[str(d) for d in FLOAT_DTYPES]}")


def check_qkv(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, int, int, int]:
    """Validate attention inputs ``q (..., n, d)``, ``k (..., m, d)``, ``v (..., m, dv)``.

    Returns ``(n, m, d, dv)``. Leading dims must broadcast; dtypes and devices must agree.
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dims (..., tokens, features); got shape {tuple(x.shape)}")
        check_float(name, x)
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"q and k must share the feature dim d: q has d={q.shape[-1]}, k has d={k.shape[-1]}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"k and v must share the key count m: k has m={k.shape[-2]}, v has m={v.shape[-2]}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must share a device; got {q.device}, {k.device}, {v.device}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError as err:
        raise ValueError(
            f"leading (batch/head) dims do not broadcast: q {tuple(q.shape[:-2])}, "
            f"k {tuple(k.shape[:-2])}, v {tuple(v.shape[:-2])}"
        ) from err
    if q.shape[-2] == 0 or k.shape[-2] == 0 or q.shape[-1] == 0:
        raise ValueError(f"empty input: n={q.shape[-2]}, m={k.shape[-2]}, d={q.shape[-1]} must all be ≥ 1")
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_finite(name, x)
    return q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]


def resolve_scale(scale: float | None, d: int) -> float:
    """``None`` means 1/√d (as in torch SDPA); otherwise a finite positive number."""
    if scale is None:
        return 1.0 / math.sqrt(d)
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale={scale} must be finite and > 0")
    return scale


def check_eps(eps: float) -> float:
    eps = float(eps)
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    return eps


def check_positive_int(name: str, value: int, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name}={value} must be an integer ≥ {minimum}")
    return int(value)
