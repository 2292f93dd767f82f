"""Capture the q, k, v an attention layer actually uses, as it runs (never re-derived from weights).

Two ways in:

* :func:`capture_dit` — a ditbench :class:`~ditbench.dit.model.DiT` (or any module holding its
  :class:`~ditbench.dit.model.Attention`): every layer reports ``(q, k, v, scale)`` to an observer,
  whatever registry kernel it uses, plus its output projection ``proj`` (so W_O·W_V is known).
* :func:`capture_sdpa` — ANY torch module whose attention goes through
  ``F.scaled_dot_product_attention`` (directly, or inside ``nn.MultiheadAttention`` /
  ``nn.TransformerEncoderLayer``). Direct calls are seen by a ``TorchFunctionMode``; calls made
  inside torch's own Python (``F.multi_head_attention_forward``) are seen one level lower by a
  ``TorchDispatchMode`` on the fused SDPA operators. Limits, all stated in docs/dit.md:
  - attention written as explicit ``softmax(q @ k.T)`` matmuls is invisible (nothing is captured
    for it; :func:`capture_sdpa` callers should check the call count against the layer count);
  - ``nn.MultiheadAttention`` only reaches SDPA with ``need_weights=False``; the capture forces
    that flag for the duration (such modules return ``None`` attention weights while captured);
  - the fused fast path of ``nn.TransformerEncoderLayer`` in inference mode is disabled while
    capturing (``torch.backends.mha.set_fastpath_enabled(False)``) so it takes the SDPA route;
  - inside torch's Python, SDPA calls that fall back to the decomposed math path (3-D inputs,
    dropout in training) are invisible at the dispatch level — run the module in eval mode;
  - masks are ignored: bounds and radii are over all (query, key) pairs, a safe over-estimate;
  - the output projection is unknown, so the ‖W_OV A3‖ figure is ‖V‖_max (W_O taken as I).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .model import Attention


@dataclass(frozen=True)
class AttentionCall:
    """One attention evaluation as the layer saw it (tensors detached)."""

    layer: str  # module name (DiT: "blocks.3.attn"), or "<module>#<call index>" for SDPA captures
    q: Tensor  # (N, heads, n, d)
    k: Tensor  # (N, heads, m, d)
    v: Tensor  # (N, heads, m, dv)
    scale: float  # the logit scale actually used: logit = scale·⟨q, k⟩
    out_weight: Tensor | None  # (D_out, heads·dv) output projection W_O, when known


OnCall = Callable[[AttentionCall], None]


@contextlib.contextmanager
def capture_dit(model: nn.Module, on_call: OnCall) -> Iterator[None]:
    """Call ``on_call`` with each :class:`AttentionCall` made by ditbench ``Attention`` layers in ``model``."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, Attention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} contains no ditbench.dit.model.Attention layer to capture")

    def observer_for(name: str) -> Callable[..., None]:
        def observe(attn: Attention, q: Tensor, k: Tensor, v: Tensor, scale: float) -> None:
            on_call(AttentionCall(name, q.detach(), k.detach(), v.detach(), scale, attn.proj.weight.detach()))
        return observe

    for name, attn in layers:
        if attn.observer is not None:
            raise ValueError(f"attention layer {name!r} is already being captured")
        attn.observer = observer_for(name)
    try:
        yield
    finally:
        for _, attn in layers:
            attn.observer = None


def _as_4d(x: Tensor) -> Tensor:
    """SDPA accepts (..., n, d); fold leading dims to (N, heads, n, d)."""
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x.unsqueeze(0)  # (1, heads, n, d)
    if x.ndim == 2:
        return x[None, None]  # (1, 1, n, d)
    return x.reshape(-1, x.shape[-3], x.shape[-2], x.shape[-1])


class _SDPARecorder:
    """Shared state of the two modes: which module is running, and the call counter."""

    def __init__(self, on_call: OnCall) -> None:
        self.on_call = on_call
        self.module_stack: list[str] = []
        self.count = 0
        self.in_direct_call = False  # a direct F.sdpa call is running: ignore its fused op below

    def record(self, q: Tensor, k: Tensor, v: Tensor, scale: float | None) -> None:
        q, k, v = (_as_4d(x.detach()) for x in (q, k, v))
        if k.shape[1] != q.shape[1]:  # grouped-query attention: repeat kv heads as SDPA does
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
        s = q.shape[-1] ** -0.5 if scale is None else float(scale)
        where = self.module_stack[-1] if self.module_stack else "<top>"
        self.on_call(AttentionCall(f"{where}#{self.count}", q, k, v, s, None))
        self.count += 1


class _FunctionMode(TorchFunctionMode):
    def __init__(self, rec: _SDPARecorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        q, k, v = (kwargs[n] if n in kwargs else args[i] for i, n in enumerate(("query", "key", "value")))
        # F.sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale, ...): scale may be positional.
        self.rec.record(q, k, v, kwargs.get("scale", args[6] if len(args) > 6 else None))
        self.rec.in_direct_call = True
        try:
            return func(*args, **kwargs)
        finally:
            self.rec.in_direct_call = False


class _DispatchMode(TorchDispatchMode):
    def __init__(self, rec: _SDPARecorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = func.__name__  # e.g. "_scaled_dot_product_flash_attention_for_cpu.default"
        if name.startswith("_scaled_dot_product") and "backward" not in name and not self.rec.in_direct_call:
            self.rec.record(args[0], args[1], args[2], kwargs.get("scale"))
        return func(*args, **kwargs)


def _force_no_weights(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    if len(args) > 4:  # need_weights passed positionally (query, key, value, key_padding_mask, need_weights)
        args = (*args[:4], False, *args[5:])
    else:
        kwargs = {**kwargs, "need_weights": False}
    return args, kwargs


@contextlib.contextmanager
def capture_sdpa(module: nn.Module, on_call: OnCall) -> Iterator[None]:
    """Call ``on_call`` for every scaled-dot-product attention evaluated while ``module`` runs.

    Layer names are ``"<innermost running submodule>#<call index>"``. See the module docstring
    for what can and cannot be seen.
    """
    rec = _SDPARecorder(on_call)

    def enter(label: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple) -> None:
            rec.module_stack.append(label)
        return hook

    def leave(mod: nn.Module, args: tuple, out: object) -> None:  # must return None: keeps the output
        rec.module_stack.pop()

    handles = []
    for name, sub in module.named_modules():
        handles.append(sub.register_forward_pre_hook(enter(name or type(module).__name__)))
        handles.append(sub.register_forward_hook(leave))
        if isinstance(sub, nn.MultiheadAttention):
            handles.append(sub.register_forward_pre_hook(_force_no_weights, with_kwargs=True))
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with _FunctionMode(rec), _DispatchMode(rec):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for h in handles:
            h.remove()
