"""The ``attention`` family: one kernel call on seeded synthetic inputs (E1–E4, E6).

Sizes are the spec's own axes (n, m, d, dv, entry bound B and scale, expressions evaluated per
point). Forward: q, k ~ U[−B, B], v ~ U[−value_bound, value_bound], checked against float64 exact
attention on ``ref_rows`` seeded random query rows (O(ref_rows·m·d) instead of O(n·m·d)).
Backward: the AS24 gradient problem with X = Y = I (so B means the same as in the forward),
checked against the float64 closed form — for n > ref_rows on the row-subsampled problem that keeps
every key (:func:`sampled_gradient`; the kernel is scored on that sub-problem, timed on the full
one; docs/measure.md says what that error means). Later passes of a point reuse its reference.
Every point also scores the trivial O(n) answer (the
uniform baseline), and a kernel with a non-softmax target (``Kernel.target``) against that target.
The benchmarks reuse :func:`make_inputs` and :func:`check`.
"""
from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ... import theory
from ...attention import KERNELS, exact_attention
from ...gradient import exact_gradient
from ..cases import Case, Geometry
from ..expr import parse_expression
from ..family import Family
from ..memo import remembered
from ..spec import SweepSpec
from ..workloads import (Check, Prepared, Target, error_metrics, planted_, realised, reference_rows, target_of,
                         uniform_)


##################################################################################################
# sizes: the spec's own axes
##################################################################################################
# Input distributions (setting.inputs): U[−B, B] entries, or planted large-margin matches
# (ditbench.measure.workloads.planted_: E2's hard inputs, far from uniform attention).
INPUTS = ("uniform", "planted")


def geometries(spec: SweepSpec) -> Iterator[Geometry]:
    """The spec's own axes (n innermost, so the smallest points of every setting finish first);
    ``per_n.d`` replaces the d axis by an expression of n."""
    bad = [v for k, vals in spec.setting for v in vals if k == "inputs" and v not in INPUTS]
    if bad:
        raise ValueError(f"{spec.experiment}: setting.inputs {bad} not allowed; allowed values: {list(INPUTS)}")
    d_expr = dict(spec.per_n).get("d")
    settings = [tuple(zip([k for k, _ in spec.setting], combo))
                for combo in itertools.product(*(v for _, v in spec.setting))]
    for setting, d_axis, bound_text, scale_text in itertools.product(
            settings, (None,) if d_expr else spec.d, spec.bound, spec.scale):
        for dv_axis in spec.dv or (None,):
            for m_value in spec.m or (None,):
                for n in spec.n:
                    m = n if m_value is None else m_value
                    d = d_axis if d_expr is None else _per_n_dim(d_expr, n, m, spec.experiment)
                    dv = d if dv_axis is None else dv_axis
                    values = {"n": n, "m": m, "d": d}
                    yield Geometry(n=n, m=m, d=d, dv=dv,
                                   bound=_evaluate("bound", bound_text, values, spec.experiment), bound_spec=bound_text,
                                   scale=_evaluate("scale", scale_text, values, spec.experiment), scale_spec=scale_text,
                                   setting=setting)


def _per_n_dim(text: str, n: int, m: int, experiment: str) -> int:
    value = _evaluate("per_n.d", text, {"n": n, "m": m, "d": 0}, experiment)
    d = int(round(value))
    if d < 1:
        raise ValueError(f"{experiment}: per_n.d = {text!r} is {value:g} at n={n}; it must round to an integer ≥ 1")
    return d


def _evaluate(field_name: str, text: str, values: Mapping[str, int], experiment: str) -> float:
    try:
        return parse_expression(text)(**values)
    except ValueError as err:
        raise ValueError(f"{experiment}: {field_name}: {err}") from None


##################################################################################################
# forward: out = softmax(scale·q kᵀ) v
##################################################################################################
def forward_inputs(case: Case) -> tuple[Tensor, Tensor, Tensor]:
    """q (n, d), k (m, d) ~ U[−B, B] (or ``planted_`` for setting inputs = "planted");
    v (m, dv) ~ U[−value_bound, value_bound]; case dtype/device."""
    gen = torch.Generator().manual_seed(case.seed)
    assert case.bound is not None  # synthetic families always draw with an entry bound
    if case.settings.get("inputs", "uniform") == "planted":
        q, k = planted_(case.n, case.m, case.d, case.bound, gen)
    else:
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
    """Float64 closed form on the whole problem for n ≤ ref_rows; beyond, on the row-subsampled
    problem (:func:`row_subproblem`), which the kernel is then scored on too."""
    args = tuple(x.to(device="cpu", dtype=torch.float64) for x in inputs)
    a1, a2, a3, x, y, e = args
    rows = gradient_rows(case, a1 @ x)
    if rows is None:
        ref = exact_gradient(*args, scale=case.scale)  # (d, d)
        return Check(rows=None, reference=ref, uniform=uniform_gradient(a1, a2, a3, x, y, e, scale=case.scale),
                     rel_scale=float(ref.abs().max()))
    ref = sampled_gradient(a1[rows], a2, a3, x, y, e[rows], scale=case.scale)  # (d, d)
    za1, _, _, _, _, _ = row_subproblem(args, rows)  # (n, d): A1 with the other rows zeroed
    return Check(rows=None, reference=ref, uniform=uniform_gradient(za1, a2, a3, x, y, e, scale=case.scale),
                 rel_scale=float(ref.abs().max()), subproblem_rows=rows)


def row_subproblem(inputs: tuple[Tensor, ...], rows: Tensor) -> tuple[Tensor, ...]:
    """The gradient problem ``inputs`` = (a1, a2, a3, x, y, e) with every row of A1 outside ``rows``
    set to zero: those rows then contribute nothing to dL/dX, which is the row-subsampled
    gradient :func:`sampled_gradient` computes (tested). Same dtype and device as ``inputs``."""
    a1 = inputs[0]
    zeroed = torch.zeros_like(a1)  # (n, d)
    index = rows.to(a1.device)
    zeroed[index] = a1[index]
    return (zeroed, *inputs[1:])


def gradient_rows(case: Case, qx: Tensor) -> Tensor | None:
    """The seeded sample of ``ref_rows`` query rows of a gradient problem (None: all rows), always
    including the row of largest ‖(A1X)_i‖₂, so that the sub-problem has the same logit radius
    (and a polynomial kernel the same degree) as the timed one. ``qx (n, d)`` = A1·X."""
    rows = reference_rows(case.n, case.ref_rows, case.seed)
    if rows is None:
        return None
    top = torch.linalg.vector_norm(qx, dim=-1).argmax().reshape(1)  # (1,)
    return torch.unique(torch.cat([rows, top]))  # (r,) sorted


def sampled_gradient(a1s: Tensor, a2: Tensor, a3: Tensor, x: Tensor, y: Tensor, es: Tensor, scale: float,
                     block: int = 16) -> Tensor:
    """dL_S/dX of the row-subsampled loss L_S = ½Σ_{i∈S}‖(D⁻¹exp(s·A1XA2ᵀ)A3Y)_i − E_i‖², every key
    kept: the closed form of DESIGN §3.2 on the r sampled query rows, O(r·n·d), streamed over
    ``block`` rows. Shapes: a1s, es (r, d); a2, a3 (n, d); x, y (d, d) → (d, d). Equals the full
    closed form on the problem whose other rows of A1 are zero (tested)."""
    h = a3 @ y  # (n, d)
    qx = a1s @ x  # (r, d)
    out = torch.zeros(x.shape, dtype=a1s.dtype)  # (d, d)
    for i in range(0, a1s.shape[0], block):
        f = torch.softmax(scale * qx[i:i + block] @ a2.T, dim=-1)  # (b, n)
        c = f @ h - es[i:i + block]  # (b, d)
        p1 = f * (c @ h.T)  # (b, n)
        p = p1 - p1.sum(dim=-1, keepdim=True) * f  # (b, n) = ∂L/∂logits on these rows
        out += scale * a1s[i:i + block].T @ (p @ a2)  # (d, d)
    return out


##################################################################################################
# per op: inputs, check, realised logit radius
##################################################################################################
@dataclass(frozen=True)
class _Op:
    make_inputs: Callable[[Case], tuple[Tensor, ...]]
    check: Callable[[Case, tuple[Tensor, ...]], Check]
    # The realised logit radius R ≥ max |scale·logit| on these inputs (Cauchy–Schwarz, theory.logit_radius).
    radius: Callable[[Case, tuple[Tensor, ...]], float]


_OPS: Mapping[str, _Op] = {
    "forward": _Op(forward_inputs, forward_check, radius=lambda case, x: theory.logit_radius(x[0], x[1], case.scale)),
    "backward": _Op(backward_inputs, backward_check,
                    radius=lambda case, x: theory.logit_radius(x[0] @ x[3], x[1], case.scale)),
}


def make_inputs(case: Case) -> tuple[Tensor, ...]:
    """The seeded synthetic inputs of ``case`` (forward: q, k, v; backward: a1, a2, a3, x, y, e)."""
    return _OPS[case.op].make_inputs(case)


def check(case: Case, inputs: tuple[Tensor, ...]) -> Check:
    """What ``case``'s output is compared with (float64 reference, uniform baseline, target)."""
    return _OPS[case.op].check(case, inputs)


def prepare(case: Case) -> Prepared:
    """One kernel call on the op's synthetic inputs, scored against its float64 check."""
    op = _OPS[case.op]
    inputs = op.make_inputs(case)
    kernel, kwargs = KERNELS[case.kernel], case.kwargs

    def call() -> Tensor:
        return kernel(*inputs, scale=case.scale, **kwargs)

    def score(out: Tensor) -> dict[str, Any]:
        start = time.perf_counter()
        reference = remembered(_CHECKS, reference_key(case), lambda: op.check(case, inputs))
        ref_s = time.perf_counter() - start
        rows = reference.subproblem_rows
        if rows is None:
            metrics = error_metrics(out, reference)
        else:  # score the kernel on the sub-problem the reference solved (once per point: _SUBSCORES)
            metrics = _subproblem_score(case, inputs, rows, reference)
        return {**metrics, "radius": op.radius(case, inputs), "err_bound": _error_bound(case, reference),
                "ref_s": ref_s, **_realised(case, inputs, reference.rows)}

    return Prepared(call=call, score=score)


# Checks of the points this worker process has measured, keyed by :func:`reference_key`: later
# passes of a point, and other kernels on the same seeded inputs, reuse its float64 reference
# instead of recomputing it (ref_s ≈ 0 on their rows).
# A Check holds only row-sized tensors (≤ ref_rows rows, or d×d for gradients), a few KiB, so a
# whole run's fit in memory; the bound only keeps a pathological run from growing without limit.
_CHECKS: OrderedDict[tuple, Check] = OrderedDict()  # bounded: ditbench.measure.memo


def reference_key(case: Case) -> tuple:
    """What determines a case's :class:`Check`: its inputs (sizes, entry bound, scale, dtype, device,
    seed, value bound, the family's setting such as planted inputs), the rows checked (ref_rows)
    and the kernel's target, if any — not the kernel itself, its parameters or the pass."""
    return (case.op, case.n, case.m, case.d, case.dv, case.bound, case.scale, case.dtype, case.device, case.seed,
            case.value_bound, case.setting, case.ref_rows, target_of(case.kernel) if case.op == "forward" else None)


def _kernel_key(case: Case) -> tuple:
    """What a kernel's result on a point's inputs depends on: the reference key, the kernel and
    its parameters (not the pass)."""
    return reference_key(case), case.kernel, repr(sorted(case.kwargs.items()))


# Errors on the row-subsampled problem (n > ref_rows), keyed like _REALISED: scoring there is a
# second kernel call on every key, as long as the timed call itself (lowrank_gradient at n = 2^19:
# 0.47 s of a 1.5 s visit), and every pass of a point runs the kernel on the same seeded inputs,
# so later passes repeat the first visit's error instead of recomputing it. Errors of points with
# n ≤ ref_rows are computed from each visit's own warm-up output.
_SUBSCORES: OrderedDict[tuple, dict[str, Any]] = OrderedDict()


def _subproblem_score(case: Case, inputs: tuple[Tensor, ...], rows: Tensor, reference: Check) -> dict[str, Any]:
    def score() -> dict[str, Any]:
        out = KERNELS[case.kernel](*row_subproblem(inputs, rows), scale=case.scale, **case.kwargs)
        return {**error_metrics(out, reference), "ref_rows": int(rows.numel())}

    metrics: dict[str, Any] = remembered(_SUBSCORES, _kernel_key(case), score)
    return dict(metrics)  # a copy: callers add to it


# What a kernel ran on a point's inputs (``workloads.realised``: degree, rank, its guarantee on the
# checked rows), keyed by the point's reference key and the kernel with its parameters: every pass
# of a point sees the same seeded inputs, so later passes reuse it. The float64 rounding-bound
# pass behind it costs O(ref_rows·m·(d + g)) and at 128 rows took several times the timed call
# (e.g. ≈ 5.5 s of a 7.9 s visit at n = 2^16, degree 15).
_REALISED: OrderedDict[tuple, dict[str, Any]] = OrderedDict()


def _realised(case: Case, inputs: tuple[Tensor, ...], rows: Tensor | None) -> dict[str, Any]:
    info: dict[str, Any] = remembered(_REALISED, _kernel_key(case), lambda: realised(case, inputs, rows))
    return dict(info)  # a copy: callers add to it


def _error_bound(case: Case, reference: Check) -> float | None:
    """The a-priori 2ε/(1+√(1−ε²))·‖V‖_max of an approximate forward kernel with a target 0 < eps < 1
    (a kernel whose describe hook states its realised bound overrides it: ``realised``)."""
    kernel = KERNELS[case.kernel]
    eps = kernel.resolved_params(case.kwargs).get("eps")
    if case.op != "forward" or kernel.exact or eps is None or not 0 < float(eps) < 1:
        return None
    return theory.output_error_bound(float(eps), reference.rel_scale)


def cost(case: Case) -> theory.Cost | None:
    """The kernel's own cost model for one call (None if it has none, or refuses the problem: its
    reasons are the row's, and a cost model may raise where the kernel cannot run, e.g. the
    polynomial kernel when no degree reaches eps on the logit radius)."""
    kernel, problem = KERNELS[case.kernel], case.problem()
    if kernel.unsupported_reasons(problem, case.kwargs):
        return None
    return kernel.predicted_cost(problem, case.kwargs)


def overhead_bytes(case: Case) -> float:
    """Memory the measurement itself needs besides the kernel's own: inputs, output, and the float64
    reference (float64 copies of the inputs plus one 2^22-element float64 tile pair; see exact.py)."""
    item = case.torch_dtype.itemsize
    tensors = (case.n + case.m) * case.d + case.m * case.dv + case.n * case.dv
    return tensors * (item + 8) + 2 * (1 << 22) * 8


F64_SLOWDOWN = 2.0  # float64 vs float32 rate (DESIGN §6: matmul ≈ 77 vs 145 GFLOP/s on 2 cores)


def reference_flops(case: Case) -> float:
    """float32-equivalent FLOPs of the point's float64 check: exact attention on min(n, ref_rows)
    query rows (forward), the closed form on min(n, ref_rows) rows (backward, 12·r·n·d + 3·r·n as
    the exact gradient's own model) plus, when rows are sampled, one more kernel call on the
    sub-problem. Scaled by F64_SLOWDOWN so the machine's float32 rate prices it."""
    r = min(case.n, case.ref_rows)
    if case.op == "forward":
        flops = theory.exact_forward_cost(r, case.m, case.d, case.dv).flops
        return F64_SLOWDOWN * flops * (2 if target_of(case.kernel) else 1)
    flops = F64_SLOWDOWN * (12.0 * r * case.n * case.d + 3.0 * r * case.n)
    if r < case.n:
        own = cost(case)
        flops += 0.0 if own is None else own.flops
    return flops


FAMILY = Family(
    name="attention", description="synthetic q, k ~ U[−B, B] (or planted matches), v: one attention call (E1–E4, E6)",
    geometries=geometries, prepare=prepare, cost=cost, overhead_bytes=overhead_bytes,
    reference_flops=reference_flops,
    setting={"inputs": False},  # "uniform" (default) | "planted"
)
