"""Shared inputs and float64 references for the gradient tests (not a test module)."""
from __future__ import annotations

import torch


def make_problem(gen, n, d, bound=0.5, dtype=torch.float64, e_scale=1.0):
    """A1, A2, A3, E ~ U[−bound, bound]^(n×d) (E scaled by e_scale), X, Y ~ U[−bound, bound]^(d×d)."""
    def u(*shape):
        return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    a1, a2, a3, x, y = u(n, d), u(n, d), u(n, d), u(d, d), u(d, d)
    e = u(n, d) * e_scale
    return tuple(t.to(dtype) for t in (a1, a2, a3, x, y, e))


def reference_grad(a1, a2, a3, x, y, e, scale):
    """float64 autograd of the materialised loss: (dL/dX (d, d), f (n, n), p = ∂L/∂S (n, n))."""
    a1, a2, a3, x, y, e = (t.double() for t in (a1, a2, a3, x, y, e))
    leaf = x.clone().requires_grad_(True)
    logits = (scale * (a1 @ leaf) @ a2.t()).detach().requires_grad_(True)  # (n, n)
    f = torch.softmax(logits, dim=-1)  # (n, n)
    loss = 0.5 * (f @ (a3 @ y) - e).square().sum()
    (p,) = torch.autograd.grad(loss, logits)  # (n, n)
    grad = scale * a1.t() @ p @ a2  # (d, d) chain rule through S = s·A1XA2ᵀ
    return grad, f.detach(), p


def adversarial_problems(gen, n, d):
    """Named inputs that stress the bound: logits at ±R, a spike row, h with a large mean, E = 0."""
    a1, a2, a3, x, y, e = make_problem(gen, n, d)
    eye = torch.eye(d, dtype=torch.float64)
    aligned = torch.ones(n, d, dtype=torch.float64)
    signs = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0).double()[:, None]  # (n, 1)
    spike = a1.clone()
    spike[0] = 3.0  # one query with a much larger norm: its logits set the radius R
    return {
        # every logit is exactly ±R: P's error is at its extremes on every entry
        "logits_at_radius": (aligned * 0.7, aligned * signs * 0.7, a3, eye, y, e),
        "spike_row": (spike, a2, a3, x, y, e),
        "h_large_mean": (a1, a2, a3 + 2.0, x, eye, e),
        "e_zero_far_target": (a1, a2, a3, x, y, torch.zeros_like(e)),
        "e_large": (a1, a2, a3, x, y, e * 20),
    }
