"""The one home of input validation: clear errors naming the value and the limit, before anything runs.

* numbers and parameters: :func:`check_eps`, :func:`check_positive_int`, :func:`check_number`, and
  :class:`Param`, the declared type and range of one kernel parameter (kernels list theirs in the
  registry; the spec loader checks every grid value against them before any worker starts);
* tensors: :func:`check_qkv` (shapes, dtypes, finiteness), :func:`check_logit_range` (logits that
  would overflow the dtype), :func:`value_scale` (values whose sums would overflow: rescaled by a
  power of two, exactly), :func:`check_output` (no kernel returns NaN/inf silently);
* resources: :func:`available_memory`, :func:`total_memory`, :func:`check_allocation` (sizes
  checked against the machine before allocating: ditbench.errors.KernelRefusal), :func:`check_out_dir`.

Importing this module does not import torch (the CLI, spec loader and report import it cheaply);
the tensor checks import it when first called.
"""
from __future__ import annotations

import errno
import math
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import Tensor


##################################################################################################
# Numbers and kernel parameters
##################################################################################################
def _real(name: str, value: Any) -> float:
    """``value`` as a float: a real number, or a one-element tensor/array (``v.abs().max()``)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)) or not (
            isinstance(value, numbers.Real) or hasattr(value, "__float__")):
        raise ValueError(f"{name}={value!r} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):  # a tensor or array of several elements
        raise ValueError(f"{name}={value!r} must be a single number") from None


def check_eps(eps: float) -> float:
    eps = _real("eps", eps)
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    return eps


def check_positive_int(name: str, value: int, *, minimum: int = 1, maximum: int | None = None, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or int(value) != value or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer ≥ {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value} exceeds the limit {maximum}{f' ({why})' if why else ''}")
    return int(value)


def check_number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
                 open_low: bool = False, open_high: bool = False) -> float:
    """A finite real number in [low, high] (ends excluded when ``open_*``); ValueError otherwise."""
    value = _real(name, value)
    lo, hi = "(" if open_low else "[", ")" if open_high else "]"
    if not math.isfinite(value) or value < low or value > high or (open_low and value == low) \
            or (open_high and value == high):
        raise ValueError(f"{name}={value} must be a finite number in {lo}{low:g}, {high:g}{hi}")
    return value


@dataclass(frozen=True)
class Param:
    """Declared type and range of one kernel parameter (DESIGN: kernels say what they support).

    kind: "int" | "float" | "str" | "bool". low/high: inclusive limits (``open_low``/``open_high``
    exclude them). choices: the allowed values of a "str" parameter. optional: ``None`` is allowed
    (it means the kernel's own rule, e.g. degree chosen from eps). why: shown with a violated limit.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False
    why: str = ""

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it fits the declaration, else ValueError naming it and the limit."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"{name}=None is not allowed; give {self.describe()}")
        if self.kind == "str" or self.kind == "bool":
            ok = isinstance(value, str) if self.kind == "str" else isinstance(value, bool)
            if not ok or (self.choices and value not in self.choices):
                raise ValueError(f"{name}={value!r} is not allowed; allowed: {self.describe()}")
            return value
        is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if self.kind == "int" and not is_int:
            raise ValueError(f"{name}={value!r} must be an integer; allowed: {self.describe()}")
        if self.kind == "float" and not (is_int or isinstance(value, numbers.Real) and not isinstance(value, bool)):
            raise ValueError(f"{name}={value!r} must be a number; allowed: {self.describe()}")
        if not math.isfinite(value):
            raise ValueError(f"{name}={value} must be finite; allowed: {self.describe()}")
        why = f" ({self.why})" if self.why else ""
        if self.low is not None and (value < self.low or self.open_low and value == self.low):
            raise ValueError(f"{name}={value} must be {'>' if self.open_low else '≥'} {self.low:g}")
        if self.high is not None and (value > self.high or self.open_high and value == self.high):
            raise ValueError(f"{name}={value} must be {'<' if self.open_high else '≤'} {self.high:g}{why}")
        return value

    def describe(self) -> str:
        if self.choices:
            text = f"one of {list(self.choices)}"
        elif self.kind in ("int", "float"):
            lo = "" if self.low is None else f"{self.low:g} {'<' if self.open_low else '≤'} "
            hi = "" if self.high is None else f" {'<' if self.open_high else '≤'} {self.high:g}"
            text = f"{'an integer' if self.kind == 'int' else 'a number'}{' ' if lo or hi else ''}{lo}x{hi}" \
                if lo or hi else ("an integer" if self.kind == "int" else "a number")
        else:
            text = f"a {self.kind}"
        return text + (" or None" if self.optional else "")


# Declarations several kernels share.
SEED = Param("int", low=0, high=2**63 - 1)
BLOCK_SIZE = Param("int", low=1, optional=True)  # rows per tile; None: the kernel's default
MEMORY_BUDGET = Param("float", low=0, open_low=True, optional=True)  # bytes; None: the kernel's default
EPS = Param("float", low=0, high=1, open_low=True, open_high=True)


def check_params(kernel: str, schema: dict[str, Param] | Any, params: dict[str, Any] | Any) -> None:
    """Every value in ``params`` against ``kernel``'s schema (ValueError naming kernel, parameter, value)."""
    for name, value in params.items():
        spec = schema.get(name)
        if spec is not None:
            spec.check(f"{kernel}: {name}", value)


##################################################################################################
# Tensors (torch imported on first use)
##################################################################################################
def _float_dtypes() -> tuple[torch.dtype, ...]:
    import torch

    return (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_finite(name: str, x: Tensor) -> float:
    """Raise ValueError if ``x`` holds NaN or ±inf (naming the tensor and how many); return max |x|."""
    import torch

    if x.numel() == 0:
        return 0.0
    top = x.detach().abs().amax()  # NaN and ±inf both survive the max of |x|: one cheap reduction on the hot path
    if bool(torch.isfinite(top)):
        return float(top)
    bad = int((~torch.isfinite(x)).sum())
    raise ValueError(f"{name} has {bad} non-finite value(s) out of {x.numel()}; inputs must be finite")


def check_float(name: str, x: Tensor) -> None:
    if x.dtype not in _float_dtypes():
        raise ValueError(f"{name} has dtype {x.dtype}; expected one of {[str(d) for d in _float_dtypes()]}")


def check_qkv(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, int, int, int]:
    """Validate attention inputs ``q (..., n, d)``, ``k (..., m, d)``, ``v (..., m, dv)``.

    Returns ``(n, m, d, dv)``. Leading dims must broadcast; dtypes and devices must agree.
    """
    import torch
    from torch import Tensor

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
    if q.shape[-2] == 0 or k.shape[-2] == 0 or q.shape[-1] == 0 or v.shape[-1] == 0:
        raise ValueError(f"empty input: n={q.shape[-2]}, m={k.shape[-2]}, d={q.shape[-1]}, dv={v.shape[-1]} "
                         f"must all be ≥ 1")
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_finite(name, x)
    return q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]


def resolve_scale(scale: float | None, d: int) -> float:
    """``None`` means 1/√d (as in torch SDPA); otherwise a finite positive number."""
    if scale is None:
        return 1.0 / math.sqrt(d)
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise ValueError(f"scale={scale!r} must be a finite number > 0 or None")
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale={scale} must be finite and > 0")
    return scale


# Headroom below the dtype's largest value: a logit tile minus its row maximum spans twice the
# largest |logit|, and the matmul's partial sums are bounded by the same Cauchy–Schwarz product.
_LOGIT_HEADROOM = 4.0


def check_logit_range(q: Tensor, k: Tensor, scale: float, what: str = "logits") -> float:
    """Raise ValueError if scale·⟨q_i, k_j⟩ (or the raw ⟨q_i, k_j⟩) could overflow the dtype.

    q ``(..., n, d)``, k ``(..., m, d)``. The bound is Cauchy–Schwarz, max‖q_i‖₂·max‖k_j‖₂ (norms in
    float64, so they cannot overflow themselves); it is computed only when the cheap bound
    d·max|q|·max|k| is near the limit. Returns the cheap bound.
    """
    import torch

    limit = float(torch.finfo(q.dtype).max) / _LOGIT_HEADROOM
    d = q.shape[-1]
    cheap = d * float(q.detach().abs().amax()) * float(k.detach().abs().amax()) * max(1.0, scale)
    if cheap <= limit:
        return cheap
    rho_q = float(torch.linalg.vector_norm(q.detach().double(), dim=-1).amax())
    rho_k = float(torch.linalg.vector_norm(k.detach().double(), dim=-1).amax())
    bound = rho_q * rho_k * max(1.0, scale)
    if bound > limit:
        raise ValueError(f"{what} overflow {q.dtype}: max‖q‖·max‖k‖·max(1, scale) = {bound:.3g} exceeds "
                         f"{limit:.3g} (the dtype's largest value / {_LOGIT_HEADROOM:g}); use float64 or "
                         f"smaller inputs")
    return bound


def value_scale(v: Tensor, terms: int) -> float:
    """A power of two s with s·max|v|·terms safely inside v's dtype (1.0 unless a sum of ``terms``
    values could overflow). Multiplying v by s and the output by 1/s is exact (no rounding, no
    change of the result), so kernels stay correct for values near the dtype's largest number."""
    import torch

    top = float(v.detach().abs().amax()) if v.numel() else 0.0
    limit = float(torch.finfo(v.dtype).max) / _LOGIT_HEADROOM
    if top == 0.0 or top * max(terms, 1) <= limit:
        return 1.0
    return 2.0 ** -math.ceil(math.log2(top))  # max |s·v| ≤ 1


def check_output(kernel: str, out: Tensor, hint: str = "") -> Tensor:
    """``out`` if every entry is finite; otherwise ValueError (never return NaN/inf silently)."""
    import torch

    if out.numel() and not bool(torch.isfinite(out.detach().abs().amax())):
        bad = int((~torch.isfinite(out.detach())).sum())
        raise ValueError(f"{kernel}: {bad} of {out.numel()} output value(s) are non-finite "
                         f"({out.dtype} overflow{'; ' + hint if hint else ''}); refusing to return NaN/inf")
    return out


##################################################################################################
# Resources
##################################################################################################
def _meminfo(key: str) -> float:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return math.inf  # unknown (not Linux): no memory-based refusal
    match = re.search(rf"^{key}:\s+(\d+) kB", text, flags=re.MULTILINE)
    return math.inf if match is None else float(match.group(1)) * 1024


def available_memory(device: str = "cpu") -> float:
    """Bytes that can still be allocated: CUDA free memory, or MemAvailable from /proc/meminfo."""
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info()
        return float(free)
    return _meminfo("MemAvailable")


def total_memory(device: str = "cpu") -> float:
    """Bytes the device has in all: a problem needing more can never run there."""
    if str(device).startswith("cuda"):
        import torch

        return float(torch.cuda.mem_get_info()[1])
    return _meminfo("MemTotal")


def check_allocation(what: str, need_bytes: float, device: str = "cpu") -> None:
    """Raise :class:`ditbench.errors.KernelRefusal` naming ``what`` when ``need_bytes`` exceeds the
    device's available memory (checked before allocating, so the user sees the size and the limit,
    not an allocator error; the runner records the point as skipped with this reason)."""
    from .errors import KernelRefusal

    have = available_memory(device)
    if need_bytes > have:
        raise KernelRefusal(f"{what} needs {need_bytes / 2**30:.3g} GiB but {device} has {have / 2**30:.3g} GiB "
                          f"available")


def check_out_dir(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """``path`` as a directory that can be created or written: OSError (an environment fault, exit 1
    in the CLI) naming the flag when it, or a parent, is a file, or when the place is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{flag} {str(path)!r} is a file, not a directory")
    parent = path
    while not parent.exists():  # the nearest existing ancestor must be a writable directory
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{flag} {str(path)!r} is under {str(parent)!r}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{flag} {str(path)!r}: {str(parent)!r} is not writable")
    return path


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


__all__: Sequence[str] = (
    "Param", "available_memory", "check_allocation", "check_eps", "check_finite", "check_float",
    "check_logit_range", "check_number", "check_out_dir", "check_output", "check_params", "check_positive_int",
    "check_qkv", "first_line", "resolve_scale", "total_memory", "value_scale",
)
