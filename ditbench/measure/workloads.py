"""What every workload family shares to measure a case: a :class:`Prepared` case (the
zero-argument call to time and how its output is scored), the :class:`Check` it is scored
against, seeded inputs and the DESIGN §2 error metrics. The families themselves (how cases of
each are built) are in :mod:`ditbench.measure.families`.

Every timed point is checked against a float64 exact answer (DESIGN §1). For large n the
forward reference is computed on a seeded random subset of query rows (``ref_rows`` of them),
which costs O(ref_rows·m·d) instead of O(n·m·d); the subset is recorded in the row.

A kernel that approximates something other than softmax attention (PolySketch approximates exact
degree-4 polynomial attention, ``poly4_exact``) is scored twice: against softmax in the ``err_*``
columns and against its own target in ``err_target_*`` (``Kernel.target``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..attention import KERNELS


@dataclass(frozen=True)
class Check:
    """What the kernel's output is compared with, on the rows ``rows`` (None = all rows)."""

    rows: Tensor | None  # (r,) int64 indices into the output's first dim
    reference: Tensor  # (r, ·) float64 exact answer on those rows
    uniform: Tensor  # (r, ·) or broadcastable: float64 trivial O(n) answer on the same rows
    rel_scale: float  # divisor of err_max_rel: ‖V‖_max (forward) or ‖reference‖_max (backward)
    target: Target | None = None  # the kernel's non-softmax target on the same rows (Kernel.target)
    # Query rows of a smaller problem to score instead of the timed one (backward at large n: the
    # row-subsampled gradient problem that keeps only these rows of A1; see
    # ditbench.measure.families.attention). None: score the timed output.
    subproblem_rows: Tensor | None = None  # (r,) int64, sorted


@dataclass(frozen=True)
class Target:
    """A non-softmax target's reference on the same rows as :class:`Check` (``Kernel.target``)."""

    kernel: str  # registry name of the target, e.g. "poly4_exact"
    reference: Tensor  # (r, dv) float64 target answer on the checked rows
    uniform: Tensor  # (1, dv) float64 mean of V (the trivial answer, scored against the target too)


@dataclass(frozen=True)
class Prepared:
    """A built case: ``call`` is what is timed; ``score(out)`` turns its first output into the
    error columns (err_max, err_max_rel, err_fro_rel, err_uniform, err_vs_uniform, nonfinite,
    ref_rows, radius and, where a target exists, err_target_*)."""

    call: Callable[[], Tensor]
    score: Callable[[Tensor], dict[str, Any]]


def target_of(kernel: str) -> str | None:
    """The registered non-softmax target of ``kernel`` (``Kernel.target``), if any."""
    registered = KERNELS.get(kernel)
    return None if registered is None else registered.target


def uniform_(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> Tensor:
    """float64 U[−bound, bound] of ``shape`` from ``gen`` (on CPU, so every device sees the same numbers)."""
    return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def planted_(n: int, m: int, d: int, bound: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Large-margin planted matches, the shape of the SETH hardness reductions: q = B·S with S
    random signs (n, d); key π(i) of a random permutation π is B·S_i, query i's own match, at the
    largest logit inputs in [−B, B]^d allow (scale·d·B²), while every other pair's logit is a
    sum of d random ±scale·B² (spread scale·B²·√d). With scale·d·B² = c²·ln n the match carries
    about n^{c²} of weight against n·O(1): far from uniform attention once c ≳ 1 (with small d only
    2^d sign patterns exist, so queries sharing one share their matches: ties at the top). Keys beyond
    min(n, m) are U[−B, B]. float64 on CPU; returns q (n, d), k (m, d)."""
    signs = torch.randint(0, 2, (n, d), generator=gen, dtype=torch.float64) * 2 - 1  # (n, d)
    q = signs * bound  # (n, d)
    k = uniform_((m, d), bound, gen)  # (m, d)
    planted = min(n, m)
    perm = torch.randperm(m, generator=gen)[:planted]  # (planted,) key slot of query i's match
    k[perm] = signs[:planted] * bound
    return q, k


def realised(case: Any, inputs: tuple[Tensor, ...], rows: Tensor | None) -> dict[str, Any]:
    """What the kernel ran on these inputs, from its ``describe(problem, params, inputs, rows)`` hook:
    degree, rank, poly_radius (the radius its polynomial was built for), approx_error, and where
    the kernel states them err_bound / rounding_bound (the float-rounding term on the checked rows)
    with a ``warning`` when that term exceeds the exact-arithmetic bound. Replaces base_row's
    prediction, which used the worst-case radius scale·d·B². ``case``: a measure Case."""
    kernel = KERNELS[case.kernel]
    if kernel.describe is None:
        return {}
    info = dict(kernel.describe(case.problem(), kernel.resolved_params(case.kwargs), inputs, rows))
    names = (("degree", "degree"), ("rank", "rank"), ("poly_radius", "radius"), ("approx_error", "approx_error"),
             ("impl", "impl"), ("err_bound", "err_bound"), ("rounding_bound", "rounding_bound"))
    out: dict[str, Any] = {name: info[key] for name, key in names if key in info}
    out["warning"] = rounding_warning(case.dtype, out.get("err_bound"), out.get("rounding_bound"))
    return out


def rounding_warning(dtype: str, err_bound: float | None, rounding: float | None) -> str:
    """Text for the row's ``warning`` column: non-empty where the kernel's rounding term in ``dtype``
    exceeds its exact-arithmetic bound (the ε-guarantee then does not hold in that precision)."""
    if err_bound is None or rounding is None or not rounding > err_bound:
        return ""
    hint = " (holds only in float64)" if dtype != "float64" else ""
    return (f"{dtype} rounding term {rounding:.2g} exceeds the eps-bound {err_bound:.2g}: "
            f"the a-priori guarantee is not established in {dtype}{hint}")


def reference_rows(n: int, limit: int, seed: int) -> Tensor | None:
    """Sorted seeded random subset of ``limit`` of the ``n`` query rows, or None when limit ≥ n (all rows)."""
    if limit >= n:
        return None
    gen = torch.Generator().manual_seed(seed + 1_000_003)  # independent of the input stream
    return torch.randperm(n, generator=gen)[:limit].sort().values  # (limit,)


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
