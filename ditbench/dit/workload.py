"""E5 end-to-end workload: a DiT forward (or backward) with a chosen attention kernel, ready for the
measurement engine to time, and its error against the same model with exact attention.

    w = build_workload(WorkloadSpec("DiT-S/2", 512, kernel="polynomial", params={"eps": 1e-3}, blocks=2))
    w.fn()              # one forward (or forward + backward) — time this, nothing else
    w.error()           # {"err_max": …, "err_uniform": …, …} against float64 exact attention

L = (image_size / 8 / p)²: 256 for DiT-*/2 at 256 px, 1024 at 512 px, 4096 at 1024 px, 16384 at 2048 px.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch
from torch import Tensor

from .._checks import check_positive_int
from ..errors import KernelRefusal
from ..attention import Problem, get_kernel
from .configs import get_config
from .latent import DiTBatch, latent_batch
from .model import DiT, build_dit

# Std of the noise put on the adaLN-Zero layers. With the published zero init every gate is 0, so
# attention would not affect the output at all and every kernel's "error" would be 0; 0.1 gives
# gates of order 0.1–0.3 (c = t_emb + y_emb has entries ≈ 0.05 after the reference init).
WORKLOAD_PERTURB = 0.1


@dataclass(frozen=True)
class WorkloadSpec:
    """One E5 case (everything needed to rebuild it; seeds included)."""

    model: str = "DiT-XL/2"  # key of DIT_CONFIGS
    image_size: int = 256  # px; latent side = image_size / 8
    kernel: str = "sdpa"  # registry name of the attention kernel
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # kernel parameters
    op: Literal["forward", "backward"] = "forward"  # backward: gradient of ⟨out, g⟩ w.r.t. the latents
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    seed: int = 0  # seeds weights, latents and the backward cotangent
    blocks: int | None = None  # build only this many DiT blocks (None: the config's depth)
    batch: int = 1

    @property
    def tokens(self) -> int:
        return get_config(self.model).tokens(self.image_size)

    def attention_problem(self) -> Problem:
        """One head's attention problem, for the registry's cost model and refusals."""
        cfg = get_config(self.model)
        d = cfg.head_dim
        return Problem(n=self.tokens, m=self.tokens, d=d, dv=d, dtype=self.dtype,
                       device=torch.device(self.device).type, scale=d**-0.5)


@dataclass
class DiTWorkload:
    """A built case: ``fn`` (a bound method) is the zero-argument call to time; ``error()`` checks it."""

    spec: WorkloadSpec
    model: DiT
    inputs: DiTBatch
    cotangent: Tensor | None  # (N, C_out, H, W) for op="backward"

    def fn(self) -> Tensor:
        """One forward (N, C_out, H, W), or forward + backward returning d⟨out, g⟩/dx (N, C, H, W)."""
        return self._run(self.model, self.inputs, self.cotangent)

    @property
    def layers(self) -> int:
        return len(self.model.blocks)

    def _run(self, model: DiT, inputs: DiTBatch, cotangent: Tensor | None) -> Tensor:
        if cotangent is None:
            with torch.no_grad():
                return model(inputs.x, inputs.t, inputs.y)  # (N, C_out, H, W)
        x = inputs.x.detach().requires_grad_(True)
        out = model(x, inputs.t, inputs.y)  # (N, C_out, H, W)
        (grad,) = torch.autograd.grad(out, x, grad_outputs=cotangent)
        return grad  # (N, C, H, W)

    def error(self, reference: Literal["float64", "same_dtype"] = "float64") -> dict[str, float]:
        """Errors of ``fn()``'s result against the same model and inputs with exact attention.

        reference: "float64" — a float64 copy with the streamed ``exact`` kernel (gold; needs
        8 bytes per parameter); "same_dtype" — this model with ``exact`` attention (isolates the
        kernel's error from the dtype's). Metrics (DESIGN §2, with the model output in place of
        Att): err_max, err_max_rel = err_max/‖ref‖_max, err_fro_rel, nonfinite, err_uniform (same
        model with ``uniform`` attention) and err_vs_uniform.
        """
        out = self.fn().detach()
        exact_model = copy.deepcopy(self.model)
        inputs, cot = self.inputs, self.cotangent
        if reference == "float64":
            exact_model = exact_model.double()
            inputs = inputs.to(inputs.x.device, torch.float64)
            cot = None if cot is None else cot.double()
        elif reference != "same_dtype":
            raise ValueError(f"reference={reference!r} must be 'float64' or 'same_dtype'")
        exact_model.set_kernel("exact")
        ref = self._run(exact_model, inputs, cot).double()
        exact_model = copy.deepcopy(self.model)
        exact_model.set_kernel("uniform")
        uniform = self._run(exact_model, self.inputs, self.cotangent).double()
        err = out.double() - ref
        err_max = float(err.abs().max())
        err_uniform = float((uniform - ref).abs().max())
        return {
            "err_max": err_max,
            "err_max_rel": err_max / max(float(ref.abs().max()), torch.finfo(torch.float64).tiny),
            "err_fro_rel": float(err.norm() / ref.norm()),
            "nonfinite": int((~torch.isfinite(out)).sum()),
            "err_uniform": err_uniform,
            "err_vs_uniform": err_max / err_uniform if err_uniform > 0 else float("inf"),
        }


def build_workload(spec: WorkloadSpec) -> DiTWorkload:
    """Build the model (seeded reference init, adaLN-Zero layers perturbed), inputs and the callable."""
    if spec.op not in ("forward", "backward"):
        raise ValueError(f"op={spec.op!r} must be 'forward' or 'backward'")
    check_positive_int("batch", spec.batch)
    kernel = get_kernel(spec.kernel)
    reasons = kernel.unsupported_reasons(spec.attention_problem(), spec.params)
    if reasons:
        raise KernelRefusal(f"kernel {spec.kernel!r} cannot run {spec.model} at {spec.image_size}px: "
                            f"{'; '.join(reasons)}")
    cfg = get_config(spec.model)
    model = build_dit(spec.model, spec.image_size, kernel=spec.kernel, kernel_params=dict(spec.params),
                      seed=spec.seed, perturb=WORKLOAD_PERTURB, depth=spec.blocks)
    model = model.to(device=spec.device, dtype=spec.dtype).requires_grad_(spec.op == "backward")
    model.pos_embed.requires_grad_(False)
    inputs = latent_batch(cfg.in_channels, cfg.latent_size(spec.image_size), spec.batch, seed=spec.seed,
                          num_classes=cfg.num_classes, dtype=spec.dtype).to(spec.device)
    cotangent = None
    if spec.op == "backward":
        gen = torch.Generator().manual_seed(spec.seed + 2)
        side = inputs.x.shape[-1]
        cotangent = torch.randn(spec.batch, cfg.out_channels, side, side, generator=gen, dtype=torch.float64)
        cotangent = cotangent.to(device=spec.device, dtype=spec.dtype)  # (N, C_out, H, W)
    return DiTWorkload(spec, model, inputs, cotangent)
