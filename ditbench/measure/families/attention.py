"""The ``attention`` family: one kernel call on seeded synthetic inputs (E1–E4, E6).

Sizes are the spec's own axes (n, m, d, dv, entry bound B and scale, expressions evaluated per
point). Forward: q, k ~ U[−B, B], v ~ U[−value_bound, value_bound], checked against float64 exact
attention on ``ref_rows`` seeded random query rows (O(ref_rows·m·d) instead of O(n·m·d)).
Backward: the AS24 gradient problem with X = Y = I (so B means the same as in the forward),
checked against the float64 closed form. Every point also scores the trivial O(n) answer (the
uniform baseline), and a kernel with a non-softmax target (``Kernel.target``) against that target.
The benchmarks reuse :func:`make_inputs` and :func:`check`.
"""
from __future__ import annotations

import itertools
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
    args = tuple(x.to(device="cpu", dtype=torch.float64) for x in inputs)
    ref = exact_gradient(*args, scale=case.scale)  # (d, d)
    a1, a2, a3, x, y, e = args
    return Check(rows=None, reference=ref, uniform=uniform_gradient(a1, a2, a3, x, y, e, scale=case.scale),
                 rel_scale=float(ref.abs().max()))


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
        reference = op.check(case, inputs)
        return {**error_metrics(out, reference), "radius": op.radius(case, inputs),
                "err_bound": _error_bound(case, reference), **realised(case, inputs, reference.rows)}

    return Prepared(call=call, score=score)


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


FAMILY = Family(
    name="attention", description="synthetic q, k ~ U[−B, B] (or planted matches), v: one attention call (E1–E4, E6)",
    geometries=geometries, prepare=prepare, cost=cost, overhead_bytes=overhead_bytes,
    setting={"inputs": False},  # "uniform" (default) | "planted"
)
