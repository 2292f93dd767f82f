"""Exact attention-training loss and gradient (DESIGN §3.2): the references everything else
is measured against.

L(X) = ½‖f h − E‖²_F with f = D⁻¹exp(s·A1XA2ᵀ) (n×n, row-stochastic) and h = A3Y.
Closed form: c = f h − E, q = c hᵀ, p = f∘q − diag((f∘q)·1) f, dL/dX = s·A1ᵀ p A2.
Because Σ_j f_ij q_ij = c_i·(f h)_i, the row sums need no extra pass: p_i = f_i∘(q_i − c_i·(fh)_i).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_positive_int
from ..attention.exact import exact_attention, sdpa_attention
from .problem import check_gradient, check_gradient_inputs, check_products

# Elements of one (block, n) logit tile: 2^22 floats (16 MiB in float32), as the forward reference.
_TILE_ELEMENTS = 1 << 22


def default_block(n: int) -> int:
    """Rows per (block, n) tile so a tile holds about 2^22 elements."""
    return max(1, min(4096, _TILE_ELEMENTS // max(n, 1)))


def attention_loss(
    a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, *, scale: float | None = None
) -> Tensor:
    """L = ½‖softmax(s·A1XA2ᵀ)·A3Y − E‖²_F as a 0-d tensor (differentiable in every input).

    a1, a2, a3, e: ``(n, d)``. x, y: ``(d, d)``. scale: s; ``None`` means 1/√d.
    Streams the forward over row blocks (ditbench.attention.exact_attention).
    """
    g = check_gradient_inputs(a1, a2, a3, x, y, e, scale)
    qx, h = a1 @ x, a3 @ y  # (n, d) each
    check_products("attention_loss", qx, a2, h, g.scale)
    out = exact_attention(qx, a2, h, scale=g.scale)  # (n, d)
    return check_gradient("attention_loss", 0.5 * (out - e).square().sum())


def _softmax_rows(qx_block: Tensor, a2t: Tensor, s: float) -> Tensor:
    """f for a row block: ``(b, d) @ (d, n)`` → ``(b, n)``, row max subtracted before exp."""
    logits = (qx_block @ a2t) * s  # (b, n)
    w = torch.exp(logits - logits.amax(dim=-1, keepdim=True))  # (b, n)
    return w / w.sum(dim=-1, keepdim=True)  # (b, n)


def exact_gradient(
    a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, *,
    scale: float | None = None, block_size: int | None = None,
) -> Tensor:
    """dL/dX by the closed form, streamed: time O(n²d), memory O(n·block + n·d), no n×n matrix.

    Args:
        a1, a2, a3, e: ``(n, d)``. x, y: ``(d, d)``. scale: s; ``None`` means 1/√d.
        block_size: rows per (block, n) tile; ``None`` = about 2^22 elements per tile.

    Returns:
        ``(d, d)`` in the inputs' dtype. Two passes over row blocks: the first builds f·h (so c is
        known), the second rebuilds f_i and forms p_i = f_i∘(c_i hᵀ − c_i·(fh)_i) and p_i·A2.
    """
    g = check_gradient_inputs(a1, a2, a3, x, y, e, scale)
    block = default_block(g.n) if block_size is None else check_positive_int("block_size", block_size)
    qx = a1 @ x  # (n, d)
    h = a3 @ y  # (n, d)
    check_products("exact_gradient", qx, a2, h, g.scale)
    a2t = a2.t()  # (d, n)
    fh = torch.cat([_softmax_rows(qx[i : i + block], a2t, g.scale) @ h
                    for i in range(0, g.n, block)])  # (n, d)
    c = fh - e  # (n, d)
    r = (c * fh).sum(dim=-1, keepdim=True)  # (n, 1) row sums of f∘q
    ht = h.t()  # (d, n)
    pa2 = torch.empty_like(qx)  # (n, d) rows of p·A2
    for i in range(0, g.n, block):
        f = _softmax_rows(qx[i : i + block], a2t, g.scale)  # (b, n)
        p = f * (c[i : i + block] @ ht - r[i : i + block])  # (b, n)
        pa2[i : i + block] = p @ a2  # (b, d)
    return check_gradient("exact_gradient", g.scale * (a1.t() @ pa2))  # (d, d)


def autograd_gradient(
    a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, *,
    scale: float | None = None, streamed: bool = True,
) -> Tensor:
    """dL/dX by plain autograd through exact attention: the baseline a practitioner would run.

    ``streamed=True`` differentiates torch SDPA on 4-D inputs (the CPU flash kernel, whose
    backward recomputes tiles: O(n·d) memory); ``False`` differentiates the materialised
    softmax(s·A1XA2ᵀ) (O(n²) memory; small n only). Shapes as :func:`exact_gradient`.
    """
    g = check_gradient_inputs(a1, a2, a3, x, y, e, scale)
    leaf = x.detach().requires_grad_(True)  # (d, d)
    with torch.enable_grad():
        qx = a1 @ leaf  # (n, d)
        h = a3 @ y  # (n, d)
        check_products("autograd_gradient", qx.detach(), a2, h, g.scale)
        if streamed:
            out = sdpa_attention(qx, a2, h, scale=g.scale)  # (n, d)
        else:
            out = torch.softmax(g.scale * qx @ a2.t(), dim=-1) @ h  # (n, n) @ (n, d)
        loss = 0.5 * (out - e).square().sum()
        (grad,) = torch.autograd.grad(loss, leaf)
    return check_gradient("autograd_gradient", grad)  # (d, d)
