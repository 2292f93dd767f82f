"""Per-op workloads: seeded inputs, the float64 exact reference, the uniform baseline, error metrics.

Every timed point is checked against a float64 exact answer (DESIGN §1). For large n the
forward reference is computed on a seeded random subset of query rows (``ref_rows`` of them),
which costs O(ref_rows·m·d) instead of O(n·m·d); the subset is recorded in the row.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import theory
from ..attention import exact_attention
from .cases import Case


@dataclass(frozen=True)
class Check:
    """What the kernel's output is compared with, on the rows ``rows`` (None = all rows)."""

    rows: Tensor | None  # (r,) int64 indices into the output's first dim
    reference: Tensor  # (r, ·) float64 exact answer on those rows
    uniform: Tensor  # (r, ·) or broadcastable: float64 trivial O(n) answer on the same rows
    rel_scale: float  # divisor of err_max_rel: ‖V‖_max (forward) or ‖reference‖_max (backward)


@dataclass(frozen=True)
class Workload:
    """How to build inputs for an op and check a kernel's output."""

    op: str
    make_inputs: Callable[[Case], tuple[Tensor, ...]]
    check: Callable[[Case, tuple[Tensor, ...]], Check]
    # The realised logit radius R ≥ max |scale·logit| on these inputs (Cauchy–Schwarz, theory.logit_radius).
    radius: Callable[[Case, tuple[Tensor, ...]], float]


def uniform_(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> Tensor:
    """float64 U[−bound, bound] of ``shape`` from ``gen`` (on CPU, so every device sees the same numbers)."""
    return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def reference_rows(n: int, limit: int, seed: int) -> Tensor | None:
    """Sorted seeded random subset of ``limit`` of the ``n`` query rows, or None when limit ≥ n (all rows)."""
    if limit >= n:
        return None
    gen = torch.Generator().manual_seed(seed + 1_000_003)  # independent of the input stream
    return torch.randperm(n, generator=gen)[:limit].sort().values  # (limit,)


##################################################################################################
# forward: out = softmax(scale·q kᵀ) v
##################################################################################################
def forward_inputs(case: Case) -> tuple[Tensor, Tensor, Tensor]:
    """q (n, d), k (m, d) ~ U[−B, B]; v (m, dv) ~ U[−value_bound, value_bound]; case dtype/device."""
    gen = torch.Generator().manual_seed(case.seed)
    q = uniform_((case.n, case.d), case.bound, gen)  # (n, d)
    k = uniform_((case.m, case.d), case.bound, gen)  # (m, d)
    v = uniform_((case.m, case.dv), case.value_bound, gen)  # (m, dv)
    return tuple(x.to(device=case.device, dtype=case.torch_dtype) for x in (q, k, v))  # type: ignore[return-value]


def forward_check(case: Case, inputs: tuple[Tensor, ...]) -> Check:
    q, k, v = (x.to(device="cpu", dtype=torch.float64) for x in inputs)  # the rounded inputs the kernel saw
    rows = reference_rows(case.n, case.ref_rows, case.seed)
    q_sub = q if rows is None else q[rows]  # (r, d)
    ref = exact_attention(q_sub, k, v, scale=case.scale)  # (r, dv)
    return Check(rows=rows, reference=ref, uniform=v.mean(dim=0, keepdim=True),  # (1, dv)
                 rel_scale=float(v.abs().max()))


##################################################################################################
# backward: dL/dX of L(X) = ½‖D⁻¹exp(s·A1 X A2ᵀ) A3 Y − E‖_F² (DESIGN §3.2)
##################################################################################################
def backward_inputs(case: Case) -> tuple[Tensor, ...]:
    """a1, a2 (n, d) ~ U[−B, B]; a3, e (n, d) ~ U[−value_bound, value_bound]; x = y = I_d.

    X = I makes the logits s·A1·A2ᵀ exactly the forward problem's, so B means the same thing in E1
    and E4. The gradient problem is square (m = n), as in AS24.
    """
    gen = torch.Generator().manual_seed(case.seed)
    a1 = uniform_((case.n, case.d), case.bound, gen)  # (n, d)
    a2 = uniform_((case.n, case.d), case.bound, gen)  # (n, d)
    a3 = uniform_((case.n, case.d), case.value_bound, gen)  # (n, d)
    e = uniform_((case.n, case.d), case.value_bound, gen)  # (n, d)
    eye = torch.eye(case.d, dtype=torch.float64)  # (d, d)
    return tuple(t.to(device=case.device, dtype=case.torch_dtype) for t in (a1, a2, a3, eye, eye.clone(), e))


def uniform_gradient(a1: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, e: Tensor, scale: float) -> Tensor:
    """dL/dX when every attention row is uniform (f = 11ᵀ/n), in O(n·d²): the gradient's trivial baseline.

    With h = A3·Y, h̄ = mean of h's rows and c = 1h̄ᵀ − E, ∂L/∂logits = (1/n)·c·(h − 1h̄ᵀ)ᵀ, so
    dL/dX = (s/n)·(A1ᵀc)·((h − 1h̄ᵀ)ᵀA2). Shapes: a1, a2, a3, e (n, d); x, y (d, d) → (d, d).
    """
    n = a1.shape[0]
    h = a3 @ y  # (n, d)
    h_bar = h.mean(dim=0, keepdim=True)  # (1, d)
    c = h_bar - e  # (n, d)
    return (scale / n) * (a1.T @ c) @ ((h - h_bar).T @ a2)  # (d, d)


def backward_check(case: Case, inputs: tuple[Tensor, ...]) -> Check:
    from .. import gradient  # the exact gradient lives with the gradient kernels

    exact_gradient = getattr(gradient, "exact_gradient", None)
    if exact_gradient is None:
        raise RuntimeError("no float64 gradient reference: ditbench.gradient.exact_gradient is missing in this build")
    args = tuple(x.to(device="cpu", dtype=torch.float64) for x in inputs)
    ref = exact_gradient(*args, scale=case.scale)  # (d, d)
    return Check(rows=None, reference=ref, uniform=uniform_gradient(*args, scale=case.scale),
                 rel_scale=float(ref.abs().max()))


WORKLOADS: Mapping[str, Workload] = {
    "forward": Workload("forward", forward_inputs, forward_check,
                        radius=lambda case, x: theory.logit_radius(x[0], x[1], case.scale)),
    "backward": Workload("backward", backward_inputs, backward_check,
                         radius=lambda case, x: theory.logit_radius(x[0] @ x[3], x[1], case.scale)),
}


##################################################################################################
# error metrics (DESIGN §2)
##################################################################################################
def error_metrics(out: Tensor, check: Check) -> dict[str, float | int]:
    """err_max, err_max_rel, err_fro_rel, err_uniform, err_vs_uniform, nonfinite, ref_rows.

    ``out`` is the kernel's full output (any dtype/device); it is compared in float64 on
    ``check.rows``. Non-finite outputs count as infinitely wrong (never NaN), and are counted.
    """
    nonfinite = int((~torch.isfinite(out)).sum())
    sub = out if check.rows is None else out[check.rows.to(out.device)]
    sub = sub.detach().to(device="cpu", dtype=torch.float64)  # (r, ·)
    diff = (sub - check.reference).abs()  # (r, ·)
    diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, math.inf))
    err_max = float(diff.max())
    ref_norm = float(torch.linalg.vector_norm(check.reference))
    err_fro = float(torch.linalg.vector_norm(diff))
    err_uniform = float((check.uniform - check.reference).abs().max())
    return {
        "err_max": err_max,
        "err_max_rel": _ratio(err_max, check.rel_scale),
        "err_fro_rel": _ratio(err_fro, ref_norm),
        "err_uniform": err_uniform,
        "err_vs_uniform": _ratio(err_max, err_uniform),
        "nonfinite": nonfinite,
        "ref_rows": int(check.reference.shape[0]),
    }


def _ratio(num: float, den: float) -> float:
    """num/den with 0/0 = 0 (both exact) and x/0 = inf: never NaN."""
    if den == 0:
        return 0.0 if num == 0 else math.inf
    return num / den
