"""The efficiency criteria of Hu et al. (NeurIPS 2024, Prop 4.1/4.2, Thm 4.1; DESIGN §3.3), measured
per layer and head on the activations a model actually produces.

Convention mapping. The criteria are stated for logits ⟨q', k'⟩/d (Alman–Song; no other scaling).
A model computes logit = s·⟨q, k⟩ (DiT: s = 1/√d). The same logits arise from
q' = √(s·d)·q and k' = √(s·d)·k, so the bounds compared with √(ln L) are

    q_bound = √(s·d)·‖q‖_max,   k_bound = √(s·d)·‖k‖_max   (DiT: factor d^{1/4}; 2.91 at d = 72),

and ov_bound = ‖W_O,h·v_h‖_max (the head's additive contribution to the output projection; the
value path carries no logit scale). B = max(q_bound, k_bound) fixes the logit range and hence the
complexity of the polynomial method; the inference verdict uses B. The training bound
Γ = max(q_bound, k_bound, ov_bound) is the one Thm 4.1 places on all three projected matrices.

Verdict rule (:class:`VerdictRule`, a stated convention — the theorems are asymptotic):
``inside`` when B ≤ inside_ratio·√ln L and d ≤ dim_factor·ln L; ``outside`` when
B ≥ outside_ratio·√ln L (the SETH-hard regime B = Θ(√log L)) or d > dim_factor·ln L;
``near`` otherwise. The authors call the criteria necessary, not sufficient.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import Tensor

from .. import theory
from .capture import AttentionCall

# Query rows per block when measuring the largest |logit| exactly (keeps a tile ≲ 2^22 logits).
_TILE = 1 << 22


@dataclass(frozen=True)
class VerdictRule:
    """Finite-L reading of "B = o(√ln L), d = O(ln L)" (see module docstring)."""

    inside_ratio: float = 0.5  # B/√ln L at or below this counts as o(√ln L) at this L
    outside_ratio: float = 1.0  # B/√ln L at or above this is the hard regime Θ(√ln L)
    dim_factor: float = 2.0  # d ≤ dim_factor·ln L counts as d = O(ln L) at this L

    def __post_init__(self) -> None:
        if not (0 < self.inside_ratio < self.outside_ratio):
            raise ValueError(f"need 0 < inside_ratio={self.inside_ratio} < outside_ratio={self.outside_ratio}")
        if not self.dim_factor > 0:
            raise ValueError(f"dim_factor={self.dim_factor} must be > 0")

    def verdict(self, ratio: float, d: int, ln_l: float) -> tuple[str, str]:
        """(verdict, reason) for bound/√ln L = ``ratio`` at head dim ``d`` and ln L = ``ln_l``."""
        reasons = []
        if d > self.dim_factor * ln_l:
            reasons.append(f"d={d} > {self.dim_factor:g}·ln L={self.dim_factor * ln_l:.1f}")
        if ratio >= self.outside_ratio:
            reasons.append(f"bound/√ln L={ratio:.2f} ≥ {self.outside_ratio:g}")
        if reasons:
            return "outside", "; ".join(reasons)
        if ratio > self.inside_ratio:
            return "near", f"bound/√ln L={ratio:.2f} in ({self.inside_ratio:g}, {self.outside_ratio:g})"
        return "inside", f"bound/√ln L={ratio:.2f} ≤ {self.inside_ratio:g}, d ≤ {self.dim_factor:g}·ln L"


@dataclass(frozen=True)
class HeadStats:
    """Raw maxima of one head over a batch (model's own convention)."""

    layer: str
    head: int
    L: int  # tokens (queries = keys)
    d: int  # head dim
    scale: float  # model logit scale s
    q_max: float  # ‖q‖_max
    k_max: float  # ‖k‖_max
    ov_max: float  # ‖W_O,h v_h‖_max (‖v_h‖_max when W_O is unknown)
    radius: float  # max |s·⟨q_i, k_j⟩| over the batch, measured exactly
    radius_cs: float  # Cauchy–Schwarz bound s·max‖q_i‖·max‖k_j‖ (theory.logit_radius)


@dataclass(frozen=True)
class HeadCriteria:
    """One row of the criteria table (``ditbench criteria``)."""

    layer: str
    head: int | str  # "max" in per-layer summaries
    L: int
    d: int
    ln_L: float
    d_over_ln_L: float
    scale: float
    q_bound: float  # paper convention (see module docstring)
    k_bound: float
    ov_bound: float
    bound: float  # B = max(q_bound, k_bound)
    threshold: float  # √ln L
    ratio: float  # B / √ln L
    gamma: float  # Γ = max(q_bound, k_bound, ov_bound) (training, Thm 4.1)
    gamma_ratio: float
    verdict: str  # inside | near | outside (inference, from B and d)
    verdict_train: str  # same rule applied to Γ
    reason: str
    radius: float  # measured max |logit|
    radius_cs: float
    eps: float
    degree: int | None  # polynomial degree for relative error eps on [−radius, radius]
    rank: int | None  # feature rank C(degree + d, d)
    exact_flops: float  # theory.exact_forward_cost, one head, one sample
    poly_flops: float | None  # theory.polynomial_forward_cost at that degree
    cost_ratio: float | None  # poly_flops / exact_flops (< 1: the polynomial method is cheaper)

    def as_dict(self) -> dict:
        return asdict(self)


COLUMNS = [f.name for f in fields(HeadCriteria)]


def head_stats(call: AttentionCall) -> list[HeadStats]:
    """Per-head maxima of one captured call (q, k, v (N, heads, L, ·))."""
    q, k, v = call.q.double(), call.k.double(), call.v.double()
    n_batch, heads, L, d = q.shape
    if k.shape[-2] != L:
        raise ValueError(f"{call.layer}: criteria assume self-attention (n = m); got n={L}, m={k.shape[-2]}")
    s = call.scale
    q_max = q.abs().amax(dim=(0, 2, 3))  # (heads,)
    k_max = k.abs().amax(dim=(0, 2, 3))  # (heads,)
    if call.out_weight is None:
        ov_max = v.abs().amax(dim=(0, 2, 3))  # (heads,)
    else:
        dv = v.shape[-1]
        w = call.out_weight.double().reshape(-1, heads, dv).transpose(0, 1)  # (heads, D_out, dv)
        ov = torch.einsum("nhtc,hoc->nhto", v, w)  # (N, heads, L, D_out)
        ov_max = ov.abs().amax(dim=(0, 2, 3))  # (heads,)
    radius = torch.zeros(heads, dtype=torch.float64, device=q.device)
    block = max(1, _TILE // (L * n_batch * heads))
    for start in range(0, L, block):
        logits = s * q[:, :, start : start + block] @ k.transpose(-1, -2)  # (N, heads, b, L)
        radius = torch.maximum(radius, logits.abs().amax(dim=(0, 2, 3)))
    return [
        HeadStats(call.layer, h, L, d, s, float(q_max[h]), float(k_max[h]), float(ov_max[h]), float(radius[h]),
                  theory.logit_radius(q[:, h], k[:, h], s))
        for h in range(heads)
    ]


def _degree(radius: float, eps: float) -> tuple[int | None, str]:
    """(theory.degree_for(radius, eps), "") — or (None, why) when no degree up to theory's cap
    reaches eps at this radius (its ValueError)."""
    try:
        return int(theory.degree_for(radius, eps)), ""
    except ValueError as err:  # radius and eps are validated here, so this is "no degree qualifies"
        return None, f"polynomial: {str(err).splitlines()[0]}"


def criteria(stats: HeadStats, eps: float = 1e-3, rule: VerdictRule = VerdictRule()) -> HeadCriteria:
    """Map one head's raw maxima to the paper's convention and judge them (module docstring)."""
    if not (0 < eps < 1):
        raise ValueError(f"eps={eps} must lie in the open interval (0, 1)")
    L, d = stats.L, stats.d
    threshold = theory.entry_threshold(L)  # √ln L (raises for L < 2)
    ln_l = threshold**2
    factor = math.sqrt(stats.scale * d)  # q' = √(s·d)·q gives s·⟨q, k⟩ = ⟨q', k'⟩/d
    q_b, k_b = factor * stats.q_max, factor * stats.k_max
    bound, gamma = max(q_b, k_b), max(q_b, k_b, stats.ov_max)
    verdict, reason = rule.verdict(bound / threshold, d, ln_l)
    verdict_train, _ = rule.verdict(gamma / threshold, d, ln_l)
    degree, why = _degree(stats.radius, eps)
    if why:
        reason = f"{reason}; {why}"
    rank = None if degree is None else theory.feature_rank(d, degree)
    exact = theory.exact_forward_cost(L, L, d, d).flops
    poly = None if degree is None else theory.polynomial_forward_cost(L, L, d, d, degree).flops
    return HeadCriteria(
        layer=stats.layer, head=stats.head, L=L, d=d, ln_L=ln_l, d_over_ln_L=d / ln_l, scale=stats.scale,
        q_bound=q_b, k_bound=k_b, ov_bound=stats.ov_max, bound=bound, threshold=threshold,
        ratio=bound / threshold, gamma=gamma, gamma_ratio=gamma / threshold, verdict=verdict,
        verdict_train=verdict_train, reason=reason, radius=stats.radius, radius_cs=stats.radius_cs, eps=eps,
        degree=degree, rank=rank, exact_flops=exact, poly_flops=poly,
        cost_ratio=None if poly is None else poly / exact,
    )


@dataclass
class CriteriaCollector:
    """An ``on_call`` for the capture contexts: reduces each call to per-head stats at once
    (so activations of a deep model are never all held), merging repeated calls of a layer."""

    stats: dict[tuple[str, int], HeadStats] = field(default_factory=dict)

    def __call__(self, call: AttentionCall) -> None:
        for s in head_stats(call):
            old = self.stats.get((s.layer, s.head))
            if old is not None:  # the same layer run again (e.g. batch split): keep the maxima
                s = HeadStats(s.layer, s.head, s.L, s.d, s.scale, max(s.q_max, old.q_max), max(s.k_max, old.k_max),
                              max(s.ov_max, old.ov_max), max(s.radius, old.radius), max(s.radius_cs, old.radius_cs))
            self.stats[(s.layer, s.head)] = s

    def rows(self, eps: float = 1e-3, rule: VerdictRule = VerdictRule()) -> list[HeadCriteria]:
        return [criteria(s, eps, rule) for s in self.stats.values()]


_ORDER = {"inside": 0, "near": 1, "outside": 2}


def per_layer(rows: Iterable[HeadCriteria]) -> list[HeadCriteria]:
    """One row per layer, in layer order (head reported as "max"): bounds and verdict of the head
    with the largest ratio, maxima of ov_bound/Γ/radii over heads, and the degree, rank and cost
    of the head with the widest logit radius (the most demanding for the polynomial method)."""
    rows = list(rows)
    worst: dict[str, HeadCriteria] = {}
    for r in rows:
        w = worst.get(r.layer)
        if w is None or (_ORDER[r.verdict], r.ratio) > (_ORDER[w.verdict], w.ratio):
            worst[r.layer] = r
    out = []
    for layer, r in worst.items():
        heads = [x for x in rows if x.layer == layer]
        widest = max(heads, key=lambda x: x.radius)  # the degree needed grows with the radius
        d = r.as_dict()
        d.update(head="max", ov_bound=max(x.ov_bound for x in heads), gamma=max(x.gamma for x in heads),
                 radius=widest.radius, radius_cs=max(x.radius_cs for x in heads), degree=widest.degree,
                 rank=widest.rank, poly_flops=widest.poly_flops, cost_ratio=widest.cost_ratio)
        d["gamma_ratio"] = d["gamma"] / r.threshold
        out.append(HeadCriteria(**d))
    return out


@torch.no_grad()
def check_dit(model: torch.nn.Module, x: Tensor, t: Tensor, y: Tensor, *, eps: float = 1e-3,
              rule: VerdictRule = VerdictRule()) -> list[HeadCriteria]:
    """Criteria per (layer, head) of a ditbench DiT on latents x (N, C, H, W), t (N,), y (N,)."""
    from .capture import capture_dit

    collect = CriteriaCollector()
    with capture_dit(model, collect):
        model(x, t, y)
    return collect.rows(eps, rule)


@torch.no_grad()
def check_module(module: torch.nn.Module, *inputs: object, eps: float = 1e-3, rule: VerdictRule = VerdictRule(),
                 **kwargs: object) -> list[HeadCriteria]:
    """Criteria for ANY module whose attention runs through SDPA (see ``capture.capture_sdpa`` limits).

    Calls ``module(*inputs, **kwargs)`` once. Raises ValueError if no attention call was seen.
    """
    from .capture import capture_sdpa

    collect = CriteriaCollector()
    with capture_sdpa(module, collect):
        module(*inputs, **kwargs)
    if not collect.stats:
        raise ValueError(
            f"no scaled-dot-product attention call was captured while running {type(module).__name__}; "
            "attention written as explicit matmul + softmax, or SDPA on the decomposed math path inside "
            "torch's Python (e.g. dropout in training mode), cannot be seen — see ditbench.dit.capture"
        )
    return collect.rows(eps, rule)
