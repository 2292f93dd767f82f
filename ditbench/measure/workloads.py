"""Workloads: how one case is measured — the zero-argument call to time and how its output is scored.

:data:`MEASUREMENTS` is keyed by (workload family, op). This module holds the ``attention``
family — :data:`WORKLOADS` (by op: seeded synthetic inputs, the float64 exact reference, the
uniform baseline) and the error metrics; :mod:`ditbench.measure.dit_cases` registers ``dit`` (E5).

Every timed point is checked against a float64 exact answer (DESIGN §1). For large n the
forward reference is computed on a seeded random subset of query rows (``ref_rows`` of them),
which costs O(ref_rows·m·d) instead of O(n·m·d); the subset is recorded in the row.

A kernel that approximates something other than softmax attention (PolySketch approximates exact
degree-4 polynomial attention, ``poly4_exact``) is scored twice: against softmax in the ``err_*``
columns and against its own target in ``err_target_*`` (``Kernel.target``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .. import theory
from ..attention import KERNELS, exact_attention
from .cases import Case


@dataclass(frozen=True)
class Check:
    """What the kernel's output is compared with, on the rows ``rows`` (None = all rows)."""

    rows: Tensor | None  # (r,) int64 indices into the output's first dim
    reference: Tensor  # (r, ·) float64 exact answer on those rows
    uniform: Tensor  # (r, ·) or broadcastable: float64 trivial O(n) answer on the same rows
    rel_scale: float  # divisor of err_max_rel: ‖V‖_max (forward) or ‖reference‖_max (backward)
    target: Target | None = None  # the kernel's non-softmax target on the same rows (Kernel.target)


@dataclass(frozen=True)
class Target:
    """A non-softmax target's reference on the same rows as :class:`Check` (``Kernel.target``)."""

    kernel: str  # registry name of the target, e.g. "poly4_exact"
    reference: Tensor  # (r, dv) float64 target answer on the checked rows
    uniform: Tensor  # (1, dv) float64 mean of V (the trivial answer, scored against the target too)


@dataclass(frozen=True)
class Workload:
    """Synthetic attention inputs for one op and how to check a kernel's output (keyed by op in
    :data:`WORKLOADS`; the benchmarks reuse these too)."""

    op: str
    make_inputs: Callable[[Case], tuple[Tensor, ...]]
    check: Callable[[Case, tuple[Tensor, ...]], Check]
    # The realised logit radius R ≥ max |scale·logit| on these inputs (Cauchy–Schwarz, theory.logit_radius).
    radius: Callable[[Case, tuple[Tensor, ...]], float]


@dataclass(frozen=True)
class Prepared:
    """A built case: ``call`` is what is timed; ``score(out)`` turns its first output into the
    error columns (err_max, err_max_rel, err_fro_rel, err_uniform, err_vs_uniform, nonfinite,
    ref_rows, radius and, where a target exists, err_target_*)."""

    call: Callable[[], Tensor]
    score: Callable[[Tensor], dict[str, Any]]


@dataclass(frozen=True)
class Measurement:
    """How cases of one (workload family, op) are measured: built, scored, and costed for the budget."""

    family: str  # key of ditbench.measure.spec.FAMILIES
    op: str
    prepare: Callable[[Case], Prepared]  # may raise CaseRefused (recorded as skipped)
    cost: Callable[[Case], theory.Cost | None]  # one timed call; None: no model, never skipped on cost
    overhead_bytes: Callable[[Case], float]  # memory the measurement needs besides the call's own
    setup_flops: Callable[[Case], float] | None = None  # FLOPs spent once building the case (not timed)


class CaseRefused(ValueError):
    """Raised while preparing a case that the workload refuses to build (e.g. a kernel that would
    need more memory than allowed inside a DiT): the point is recorded as ``skipped`` with the message."""


# (workload family, op) → Measurement; the "dit" entries are added by ditbench.measure.dit_cases.
MEASUREMENTS: dict[tuple[str, str], Measurement] = {}


def register_measurement(measurement: Measurement) -> Measurement:
    key = (measurement.family, measurement.op)
    if key in MEASUREMENTS:
        raise ValueError(f"measurement {key} is already registered")
    MEASUREMENTS[key] = measurement
    return measurement


def measurement_for(case: Case) -> Measurement:
    try:
        return MEASUREMENTS[case.workload, case.op]
    except KeyError:
        raise ValueError(f"no measurement registered for workload family {case.workload!r}, op {case.op!r}; "
                         f"registered: {sorted(MEASUREMENTS)}") from None


def target_of(kernel: str) -> str | None:
    """The registered non-softmax target of ``kernel`` (``Kernel.target``), if any."""
    registered = KERNELS.get(kernel)
    return None if registered is None else registered.target


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
    assert case.bound is not None  # synthetic families always draw with an entry bound
    q = uniform_((case.n, case.d), case.bound, gen)  # (n, d)
    k = uniform_((case.m, case.d), case.bound, gen)  # (m, d)
    v = uniform_((case.m, case.dv), case.value_bound, gen)  # (m, dv)
    return tuple(x.to(device=case.device, dtype=case.torch_dtype) for x in (q, k, v))  # type: ignore[return-value]


def forward_check(case: Case, inputs: tuple[Tensor, ...]) -> Check:
    q, k, v = (x.to(device="cpu", dtype=torch.float64) for x in inputs)  # the rounded inputs the kernel saw
    rows = reference_rows(case.n, case.ref_rows, case.seed)
    q_sub = q if rows is None else q[rows]  # (r, d)
    ref = exact_attention(q_sub, k, v, scale=case.scale)  # (r, dv)
    mean_v = v.mean(dim=0, keepdim=True)  # (1, dv)
    target = target_of(case.kernel)
    return Check(rows=rows, reference=ref, uniform=mean_v, rel_scale=float(v.abs().max()),
                 target=None if target is None else Target(
                     target, KERNELS[target](q_sub, k, v, scale=case.scale), mean_v))  # (r, dv) in float64


##################################################################################################
# backward: dL/dX of L(X) = ½‖D⁻¹exp(s·A1 X A2ᵀ) A3 Y − E‖_F² (DESIGN §3.2)
##################################################################################################
def backward_inputs(case: Case) -> tuple[Tensor, ...]:
    """a1, a2 (n, d) ~ U[−B, B]; a3, e (n, d) ~ U[−value_bound, value_bound]; x = y = I_d.

    X = I makes the logits s·A1·A2ᵀ exactly the forward problem's, so B means the same thing in E1
    and E4. The gradient problem is square (m = n), as in AS24.
    """
    gen = torch.Generator().manual_seed(case.seed)
    assert case.bound is not None  # synthetic families always draw with an entry bound
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
    a1, a2, a3, x, y, e = args
    return Check(rows=None, reference=ref, uniform=uniform_gradient(a1, a2, a3, x, y, e, scale=case.scale),
                 rel_scale=float(ref.abs().max()))


##################################################################################################
# the attention family: one kernel call on synthetic inputs
##################################################################################################
WORKLOADS: Mapping[str, Workload] = {
    "forward": Workload("forward", forward_inputs, forward_check,
                        radius=lambda case, x: theory.logit_radius(x[0], x[1], case.scale)),
    "backward": Workload("backward", backward_inputs, backward_check,
                         radius=lambda case, x: theory.logit_radius(x[0] @ x[3], x[1], case.scale)),
}


def attention_prepare(case: Case) -> Prepared:
    """One kernel call on the op's synthetic inputs, scored against its float64 check."""
    workload = WORKLOADS[case.op]
    inputs = workload.make_inputs(case)
    kernel, kwargs = KERNELS[case.kernel], case.kwargs

    def call() -> Tensor:
        return kernel(*inputs, scale=case.scale, **kwargs)

    def score(out: Tensor) -> dict[str, Any]:
        check = workload.check(case, inputs)
        return {**error_metrics(out, check), "radius": workload.radius(case, inputs),
                "err_bound": _error_bound(case, check)}

    return Prepared(call=call, score=score)


def _error_bound(case: Case, check: Check) -> float | None:
    """The a-priori 2ε/(1−ε)·‖V‖_max of an approximate forward kernel with a target 0 < eps < 1."""
    kernel = KERNELS[case.kernel]
    eps = kernel.resolved_params(case.kwargs).get("eps")
    if case.op != "forward" or kernel.exact or eps is None or not 0 < float(eps) < 1:
        return None
    return theory.output_error_bound(float(eps), check.rel_scale)


def attention_cost(case: Case) -> theory.Cost | None:
    """The kernel's own cost model for one call (None if it has none, or refuses the problem: its
    reasons are the row's, and a cost model may raise where the kernel cannot run, e.g. the
    polynomial kernel when no degree reaches eps on the logit radius)."""
    kernel, problem = KERNELS[case.kernel], case.problem()
    if kernel.unsupported_reasons(problem, case.kwargs):
        return None
    return kernel.predicted_cost(problem, case.kwargs)


def attention_overhead_bytes(case: Case) -> float:
    """Memory the measurement itself needs besides the kernel's own: inputs, output, and the float64
    reference (float64 copies of the inputs plus one 2^22-element float64 tile pair; see exact.py)."""
    item = case.torch_dtype.itemsize
    tensors = (case.n + case.m) * case.d + case.m * case.dv + case.n * case.dv
    return tensors * (item + 8) + 2 * (1 << 22) * 8


for _op in WORKLOADS:
    register_measurement(Measurement("attention", _op, attention_prepare, cost=attention_cost,
                                     overhead_bytes=attention_overhead_bytes))


##################################################################################################
# error metrics (DESIGN §2)
##################################################################################################
def error_metrics(out: Tensor, check: Check) -> dict[str, float | int]:
    """err_max, err_max_rel, err_fro_rel, err_uniform, err_vs_uniform, nonfinite, ref_rows, and
    err_target_max, err_target_fro_rel, err_target_uniform when ``check.target`` is set.

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
    out_metrics: dict[str, float | int] = {
        "err_max": err_max,
        "err_max_rel": _ratio(err_max, check.rel_scale),
        "err_fro_rel": _ratio(err_fro, ref_norm),
        "err_uniform": err_uniform,
        "err_vs_uniform": _ratio(err_max, err_uniform),
        "nonfinite": nonfinite,
        "ref_rows": int(check.reference.shape[0]),
    }
    if check.target is not None:
        t = check.target
        t_diff = (sub - t.reference).abs()  # (r, dv)
        t_diff = torch.where(torch.isfinite(t_diff), t_diff, torch.full_like(t_diff, math.inf))
        out_metrics.update({
            "err_target_max": float(t_diff.max()),
            "err_target_fro_rel": _ratio(float(torch.linalg.vector_norm(t_diff)),
                                         float(torch.linalg.vector_norm(t.reference))),
            "err_target_uniform": float((t.uniform - t.reference).abs().max()),
        })
    return out_metrics


def _ratio(num: float, den: float) -> float:
    """num/den with 0/0 = 0 (both exact) and x/0 = inf: never NaN."""
    if den == 0:
        return 0.0 if num == 0 else math.inf
    return num / den
