"""Exact gradient routines against float64 autograd of the materialised loss and central finite
differences.

Rounding tolerance: each entry of s·A1ᵀpA2 is a chain of sums of length ≤ n (row sums of f, f·h,
p·A2, A1ᵀ·) plus O(d) products, so its error is ≤ γ_N·mag with N ≈ 4n + 4d roundings on the path,
γ_N = N·u/(1 − N·u), and mag = s·|A1|ᵀ|p||A2| + (the same with |f||q|) the absolute-value sum.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ditbench import theory
from ditbench.gradient import attention_loss, autograd_gradient, exact_gradient
from gradient_cases import adversarial_problems, make_problem, reference_grad
from tolerances import gamma, max_abs, softmax_rounding_bound

U64 = torch.finfo(torch.float64).eps / 2


def _rounding_tol(a1, a2, a3, x, y, e, scale):
    """γ_N·mag entrywise (module docstring), float64."""
    grad, f, p = reference_grad(a1, a2, a3, x, y, e, scale)
    h = a3.double() @ y.double()
    c = f @ h - e.double()
    mag_p = f * ((c.abs() @ h.abs().t()) + (c.abs() * (f @ h).abs()).sum(-1, keepdim=True))  # (n, n) ≥ |p| terms
    mag = scale * a1.double().abs().t() @ mag_p @ a2.double().abs()  # (d, d)
    n, d = a1.shape
    big_n = 4 * n + 4 * d
    return grad, big_n * U64 / (1 - big_n * U64) * mag


@pytest.mark.parametrize("block", [None, 1, 7, 64])
def test_exact_gradient_matches_autograd_any_block(gen, block):
    args = make_problem(gen, 53, 5, bound=1.0)
    grad, tol = _rounding_tol(*args, 0.4)
    out = exact_gradient(*args, scale=0.4, block_size=block)
    assert out.shape == (5, 5) and out.dtype == torch.float64
    assert ((out - grad).abs() <= tol).all()


@pytest.mark.parametrize("name", ["logits_at_radius", "spike_row", "h_large_mean", "e_zero_far_target", "e_large"])
def test_exact_gradient_adversarial(gen, name):
    args = adversarial_problems(gen, 40, 4)[name]
    grad, tol = _rounding_tol(*args, 0.5)
    assert ((exact_gradient(*args, scale=0.5, block_size=9) - grad).abs() <= tol).all()


def test_exact_gradient_stable_at_huge_logits(gen):
    # Logits up to ~1e4: a naive exp overflows; the row-max shift keeps everything finite.
    args = make_problem(gen, 30, 3, bound=30.0)
    grad, tol = _rounding_tol(*args, 1.0)
    out = exact_gradient(*args, scale=1.0)
    assert torch.isfinite(out).all()
    assert ((out - grad).abs() <= tol).all()


@pytest.mark.parametrize("streamed", [True, False])
def test_autograd_gradient_matches_closed_form(gen, streamed):
    args = make_problem(gen, 45, 4, bound=1.0)
    grad, tol = _rounding_tol(*args, 0.5)
    # SDPA's flash backward sums in blocks with its own order: same γ_N argument.
    assert ((autograd_gradient(*args, scale=0.5, streamed=streamed) - grad).abs() <= tol).all()


def test_attention_loss_and_default_scale(gen):
    a1, a2, a3, x, y, e = make_problem(gen, 20, 4)
    logits = (a1 @ x) @ a2.t() / 2.0  # scale=None → 1/√d = 1/2
    ref = 0.5 * (torch.softmax(logits, -1) @ (a3 @ y) - e).square().sum()
    loss = attention_loss(a1, a2, a3, x, y, e)
    assert loss.ndim == 0
    # Each side's residual r = softmax(logits)·h − e errs by ≤ δr per entry: the softmax average's
    # rounding (logits from two chained length-d products, so γ_2d; values ≤ max|h| + δh), h = a3·y's
    # own γ_d, and the subtraction. Then |δ(½Σr²)| ≤ Σ|r|·δr + ½·n·d·δr² + γ_{nd}·L, on both sides.
    n, d = a1.shape
    dh = gamma(d) * max_abs(a3.abs() @ y.abs())
    reach = 0.5 * max_abs(a1.abs() @ x.abs() @ a2.abs().t())
    h, r = a3 @ y, torch.softmax(logits, -1) @ (a3 @ y) - e
    dr = softmax_rounding_bound(n, 2 * d, reach, max_abs(h) + dh, torch.float64) + dh \
        + U64 * (max_abs(h) + max_abs(e))
    tol = 2 * (float(r.abs().sum()) * dr + 0.5 * n * d * dr**2 + gamma(n * d) * ref.item())
    assert abs(loss.item() - ref.item()) <= tol
    grad, tol = _rounding_tol(a1, a2, a3, x, y, e, 0.5)
    assert ((exact_gradient(a1, a2, a3, x, y, e) - grad).abs() <= tol).all()


def test_central_finite_differences(gen):
    a1, a2, a3, x, y, e = make_problem(gen, 6, 3, bound=1.0)
    grad = exact_gradient(a1, a2, a3, x, y, e, scale=0.7)

    def fd(step):
        out = torch.empty(3, 3, dtype=torch.float64)
        for i in range(3):
            for j in range(3):
                dx = torch.zeros(3, 3, dtype=torch.float64)
                dx[i, j] = step
                out[i, j] = (attention_loss(a1, a2, a3, x + dx, y, e, scale=0.7)
                             - attention_loss(a1, a2, a3, x - dx, y, e, scale=0.7)) / (2 * step)
        return out

    coarse, fine = fd(1e-3), fd(5e-4)
    loss = attention_loss(a1, a2, a3, x, y, e, scale=0.7).item()
    # Central differences err by c·step² + O(u·L/step): halving the step cuts the first term 4×,
    # so |fine − true| ≤ |coarse − fine|/3 (Richardson); plus 4·u·L/step of cancellation noise.
    tol = (coarse - fine).abs() / 3 + 4 * U64 * loss / 5e-4 + 1e-15
    assert ((fine - grad).abs() <= tol * 1.01).all()
    assert (coarse - fine).abs().max() > 0  # the FD check is not trivially exact


def test_exact_gradient_flops_match_cost_model(gen):
    n, d = 64, 4
    args = make_problem(gen, n, d, dtype=torch.float64)
    with FlopCounterMode(display=False) as counter:
        exact_gradient(*args, scale=0.5, block_size=16)
    counted = counter.get_total_flops()  # matmuls only
    model = theory.exact_gradient_cost(n, d, itemsize=8, block=16).flops
    # The model's matmul part is 10n²d + 8nd² (A1X, A3Y, A1ᵀ(pA2)); the rest is elementwise.
    assert 10 * n * n * d <= counted <= 10 * n * n * d + 8 * n * d * d
    assert counted <= model
