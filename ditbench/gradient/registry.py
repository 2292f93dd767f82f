"""Registration of the gradient routines as ``op="backward"`` kernels in
:data:`ditbench.attention.KERNELS`, called ``KERNELS[name](a1, a2, a3, x, y, e, scale=None, **params)``.

A backward :class:`~ditbench.attention.Problem` reads n = m (tokens) and d = dv (feature dim);
``bound`` is the entry bound B of A1·X and A2, so every |logit| ≤ scale·d·B².
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from .. import theory
from ..attention.registry import Kernel, Problem, register
from ..errors import KernelRefusal
from ..expapprox import ExpApprox
from . import lowrank as lowrank_mod
from .autograd import polynomial_autograd_gradient
from .exact import autograd_gradient, default_block, exact_gradient
from .._checks import BLOCK_SIZE, EPS, MEMORY_BUDGET, Param
from ..attention.polynomial import DEGREE, IMPLS, choose_approx
from .lowrank import lowrank_gradient
from .problem import DEFAULT_MEMORY_BUDGET


def _approx_for(p: Problem, params: Mapping[str, Any]) -> ExpApprox:
    radius = p.radius_bound()
    if radius is None:
        raise KernelRefusal("the problem has no entry bound, so the logit radius (and degree) is unknown")
    return choose_approx(radius, float(params["eps"]), params["degree"])


def _describe(kind: str) -> Any:
    """describe hook: degree, rank (k1 = C(g + d, d) for both routes), the radius P was built for
    and P's realised error — on the inputs (a1, a2, a3, x, y, e) when given (the logit radius the
    routine itself computes), else for the problem's worst-case radius scale·d·B²."""
    def describe(p: Problem, params: Mapping[str, Any], inputs: tuple[Tensor, ...] | None = None,
                 rows: Tensor | None = None) -> dict[str, Any]:
        if inputs is None:
            approx = _approx_for(p, params)
        else:
            a1, a2, x = inputs[0], inputs[1], inputs[3]
            scale = p.resolved_scale
            approx = choose_approx(theory.logit_radius(a1 @ x, a2, scale), float(params["eps"]), params["degree"])
        k1 = theory.feature_rank(p.d, approx.degree)
        info: dict[str, Any] = {"degree": approx.degree, "rank": k1, "radius": approx.radius,
                                "approx_error": approx.relative_error}
        if kind == "lowrank":
            info["ranks"] = theory.gradient_ranks(p.d, approx.degree)
        return info
    return describe


def _lowrank_block(p: Problem, params: Mapping[str, Any], degree: int) -> int:
    if params["block_size"] is not None:
        return int(params["block_size"])
    return lowrank_mod.default_block(p.d, degree, params["q_factor"], p.dtype.itemsize)


def _lowrank_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    g = _approx_for(p, params).degree
    return theory.lowrank_gradient_cost(p.n, p.d, g, itemsize=p.dtype.itemsize, block=_lowrank_block(p, params, g),
                                        direct=params["q_factor"] == "direct")


def _lowrank_limits(p: Problem, params: Mapping[str, Any]) -> list[str]:
    try:
        approx = _approx_for(p, params)
        budget = DEFAULT_MEMORY_BUDGET if params["memory_budget"] is None else float(params["memory_budget"])
        lowrank_mod.check_memory(p.n, p.d, approx, params["q_factor"], p.dtype.itemsize,
                                 _lowrank_block(p, params, approx.degree), budget, float(params["eps"]))
    except KernelRefusal as err:  # degree unreachable, over budget, no entry bound
        return [f"lowrank_gradient: {err}"]
    return []


def _poly_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    g = _approx_for(p, params).degree
    return theory.polynomial_autograd_gradient_cost(p.n, p.d, g, itemsize=p.dtype.itemsize,
                                                    block=params["block_size"] or 1024)


def _poly_limits(p: Problem, params: Mapping[str, Any]) -> list[str]:
    try:
        cost = _poly_cost(p, params)
    except KernelRefusal as err:  # degree unreachable for eps at this radius, no entry bound
        return [f"polynomial_autograd_gradient: {err}"]
    budget = DEFAULT_MEMORY_BUDGET if params["memory_budget"] is None else float(params["memory_budget"])
    if cost.bytes > budget:
        return [f"polynomial_autograd_gradient needs about {cost.bytes / 2**20:.1f} MiB > memory_budget="
                f"{budget / 2**20:.1f} MiB"]
    return []


def _exact_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    block = params["block_size"] or default_block(p.n)
    return theory.exact_gradient_cost(p.n, p.d, itemsize=p.dtype.itemsize, block=block)


def _autograd_cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    return theory.autograd_gradient_cost(p.n, p.d, itemsize=p.dtype.itemsize, streamed=params["streamed"])


EXACT_GRADIENT = register(Kernel(
    name="exact_gradient", fn=exact_gradient, op="backward", exact=True,
    description="closed-form dL/dX streamed over row blocks (O(n²d) time, O(n·block) memory)",
    params={"block_size": None}, schema={"block_size": BLOCK_SIZE}, cost=_exact_cost,
))
AUTOGRAD_GRADIENT = register(Kernel(
    name="autograd_gradient", fn=autograd_gradient, op="backward", exact=True,
    description="torch autograd through exact attention (SDPA flash when streamed, else materialised)",
    params={"streamed": True}, schema={"streamed": Param("bool")}, cost=_autograd_cost,
))
LOWRANK_GRADIENT = register(Kernel(
    name="lowrank_gradient", fn=lowrank_gradient, op="backward", exact=False,
    description="AS24 chained low-rank gradient (ranks k1, k2 = k1 + d, k3 = k1·k2; O(n·k1·k2·d))",
    params={"eps": 1e-3, "degree": None, "q_factor": "paper", "block_size": None, "memory_budget": None,
            "impl": "auto"},
    schema={"eps": EPS, "degree": DEGREE, "q_factor": Param("str", choices=("paper", "direct")),
            "block_size": BLOCK_SIZE, "memory_budget": MEMORY_BUDGET, "impl": Param("str", choices=IMPLS)},
    cost=_lowrank_cost, limits=_lowrank_limits, describe=_describe("lowrank"),
))
POLYNOMIAL_AUTOGRAD_GRADIENT = register(Kernel(
    name="polynomial_autograd_gradient", fn=polynomial_autograd_gradient, op="backward", exact=False,
    description="autograd through the streamed polynomial forward (O(n·r·d) time, O(n·r) memory)",
    params={"eps": 1e-3, "degree": None, "block_size": None, "memory_budget": None},
    schema={"eps": EPS, "degree": DEGREE, "block_size": BLOCK_SIZE, "memory_budget": MEMORY_BUDGET},
    cost=_poly_cost, limits=_poly_limits, describe=_describe("autograd"),
))
