"""The ``dit`` family: end-to-end latent DiT cases (E5).

A ``dit`` sweep names a model, image sizes and (optionally) a block count and batch in its
``setting`` table; every case builds :func:`ditbench.dit.workload.build_workload` with the case's
kernel and parameters and times one model forward (or forward + backward), with the same timer
as every other point. Sizes in the row: n = m = L tokens, d = dv = head dim, scale 1/√d (DiT's);
the entry bound of a DiT's activations is not known in advance, so ``bound`` is empty.

    [[sweep]]
    experiment = "E5"
    workload = "dit"
    kernels = ["sdpa", "polynomial"]
    setting = {model = "DiT-S/8", image_size = [256, 512, 1024], blocks = 2}
    params = {polynomial = {eps = [0.1], radius = [2.0]}}

Errors (``err_*``) compare the model's final output with the same weights and inputs under
float64 ``exact`` attention (:meth:`DiTWorkload.error`; err_max_rel divides by ‖reference‖_max,
``err_uniform`` is the same model with ``uniform`` attention). A kernel refusal raised by
``build_workload`` (:class:`~ditbench.errors.KernelRefusal`, e.g. ``polynomial`` needing more
memory than allowed at head dim 64) is recorded as ``skipped`` with its message; any other error
is a failure. Costs are theory's (:func:`ditbench.theory.dit_cost` and neighbours).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal, cast

from ... import theory
from ...attention import KERNELS
from ...dit.configs import VAE_DOWNSAMPLE, DiTConfig, get_config
from ...dit.workload import WorkloadSpec, build_workload
from ...errors import KernelRefusal
from ..cases import Case, Geometry
from ..family import Family
from ..spec import SweepSpec
from ..workloads import Prepared


def geometries(spec: SweepSpec) -> Iterator[Geometry]:
    """model × blocks × batch × image_size (innermost, so small images run first); n = L."""
    grid = spec.setting_grid
    for model in grid["model"]:
        cfg = get_config(model)
        for blocks in grid.get("blocks", (None,)):
            depth = _blocks(cfg, blocks)
            for batch in grid.get("batch", (1,)):
                if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
                    raise ValueError(f"{spec.experiment}: setting.batch={batch!r} must be an integer ≥ 1")
                for image_size in grid["image_size"]:
                    if isinstance(image_size, bool) or not isinstance(image_size, int):
                        raise ValueError(f"{spec.experiment}: setting.image_size={image_size!r} must be an integer")
                    tokens = cfg.tokens(image_size)  # ValueError names the multiple it needs
                    d = cfg.head_dim
                    yield Geometry(n=tokens, m=tokens, d=d, dv=d, bound=None, bound_spec="", scale=d**-0.5,
                                   scale_spec="1/sqrt(d)",
                                   setting=(("batch", batch), ("blocks", depth), ("model", model)))


def _blocks(cfg: DiTConfig, blocks: Any) -> int:
    if blocks is None:
        return cfg.depth
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks <= cfg.depth:
        raise ValueError(f"setting.blocks={blocks!r} must be an integer in [1, {cfg.depth}] ({cfg.name}'s depth)")
    return blocks


def image_size(case: Case) -> int:
    """The image size (px) whose token count is ``case.n``: 8·p·√L (the inverse of DiTConfig.tokens)."""
    cfg = get_config(case.settings["model"])
    side = math.isqrt(case.n)
    size = VAE_DOWNSAMPLE * cfg.patch_size * side
    if side * side != case.n or cfg.tokens(size) != case.n:
        raise ValueError(f"n={case.n} is not the token count of {cfg.name} at any image size")
    return size


def workload_spec(case: Case) -> WorkloadSpec:
    """The :class:`ditbench.dit.workload.WorkloadSpec` of ``case``."""
    s = case.settings
    return WorkloadSpec(model=s["model"], image_size=image_size(case), kernel=case.kernel, params=case.kwargs,
                        op=cast(Literal["forward", "backward"], case.op), dtype=case.torch_dtype,
                        device=case.device, seed=case.seed,
                        blocks=s["blocks"], batch=s["batch"])


def prepare(case: Case) -> Prepared:
    try:
        workload = build_workload(workload_spec(case))
    except KernelRefusal as err:  # the kernel's refusal on the per-head problem: a skip with its reason
        raise KernelRefusal(f"build_workload refused: {err}") from err

    def score(out: Any) -> dict[str, Any]:
        # DiTWorkload.error() re-runs fn() itself and compares with float64 exact attention.
        return {**workload.error(), "ref_rows": case.n, "radius": None}

    return Prepared(call=workload.fn, score=score)


##################################################################################################
# cost estimate (for skipping over-budget points; documented in docs/measure.md)
##################################################################################################
def cost(case: Case) -> theory.Cost | None:
    """One timed call: blocks × batch × (heads × the kernel's per-head cost + the linear layers);
    backward (forward + autograd) counted as 3× the forward. None if the kernel has no cost model."""
    cfg = get_config(case.settings["model"])
    kernel, problem = KERNELS[case.kernel], case.problem()
    if kernel.unsupported_reasons(problem, case.kwargs):
        return None  # refused before it runs (the reasons are the row's); its cost model may not apply
    head = kernel.predicted_cost(problem, case.kwargs)
    if head is None:
        return None
    s = case.settings
    return theory.dit_cost(head, tokens=case.n, hidden=cfg.hidden_size, mlp_ratio=cfg.mlp_ratio, heads=cfg.num_heads,
                           blocks=s["blocks"], batch=s["batch"], itemsize=case.torch_dtype.itemsize,
                           backward=case.op == "backward")


def overhead_bytes(case: Case) -> float:
    """Weights, their float64 exact and uniform copies that error() builds, one float64 activation set."""
    cfg = get_config(case.settings["model"])
    s = case.settings
    return theory.dit_overhead_bytes(tokens=case.n, hidden=cfg.hidden_size, mlp_ratio=cfg.mlp_ratio,
                                     blocks=s["blocks"], batch=s["batch"], itemsize=case.torch_dtype.itemsize,
                                     backward=case.op == "backward")


def setup_flops(case: Case) -> float:
    """Building the inputs: ditbench.dit.latent_batch takes the Q factor of a float64 Gaussian
    D × d0 matrix, D = 4·(image/8)² latent entries, d0 = D/4 — Householder QR, 2·D·d0² − ⅔·d0³
    FLOPs. It dominates everything else at 512 px and beyond (measured on the 2-core machine:
    85 s at D = 16384, about 6 GFLOP/s), so it is what limits the image size, not attention."""
    cfg = get_config(case.settings["model"])
    ambient = cfg.in_channels * cfg.latent_size(image_size(case)) ** 2
    return theory.latent_basis_flops(ambient, max(1, ambient // 4))


FAMILY = Family(
    name="dit", description="latent DiT forward/backward with the kernel in every block (E5)",
    geometries=geometries, prepare=prepare, cost=cost, overhead_bytes=overhead_bytes, setup_flops=setup_flops,
    # The DiT fixes the sizes: n = m = L = (image_size / 8 / p)², d = dv = head dim, scale 1/√d (as DiT).
    # Its backward is autograd through the model, so the kernels are forward kernels for either op.
    setting={"model": True, "image_size": True, "blocks": False, "batch": False},
    derived=("n", "m", "d", "dv", "bound", "scale"), kernel_op="forward",
)
