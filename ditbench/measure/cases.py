"""Expand a :class:`SweepSpec` into concrete, hashable :class:`Case` objects.

A case is everything one measured point needs, with every expression already evaluated, so it
can be shipped to a worker process (or a remote executor) and recorded as one results row. Its
``case_id`` (a hash of the identifying fields) keys ``--resume``.

Expansion is generic over kernels, dtypes, seeds and kernel parameters; the sizes come from the
sweep's workload family (:func:`ditbench.measure.family.get_family`, ``Family.geometries``): the
spec's own n, m, d, dv, B and scale axes for ``attention``, the model's token count and head dim
for ``dit``.

A case's identity is *derived*: every field of :class:`Case` counts (so a new field can never
merge distinct cases under ``--resume``) except those declared with ``metadata=HOW`` — settings
of how long or how carefully to measure, which a resumed run may change.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Any, ClassVar

import torch

from ..attention import KERNELS, Problem
from . import validate
from .expr import parse_expression
from .family import get_family
from .spec import SweepSpec

TORCH_DTYPES: Mapping[str, torch.dtype] = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
}


# Metadata of a Case field that says how to measure, not what: left out of the case's identity.
HOW: Mapping[str, Any] = MappingProxyType({"identity": False})


@dataclass(frozen=True)
class Case:
    """One measured point. Sizes as in DESIGN §2: q (n, d), k (m, d), v (m, dv)."""

    experiment: str
    kernel: str
    op: str
    n: int
    m: int
    d: int
    dv: int
    bound: float | None  # entry bound B (q, k ~ U[−B, B]); for op="backward", of a1 and a2; None: unknown (dit)
    bound_spec: str  # the expression B came from, e.g. "1.0*sqrt(log(n))" ("" when unknown)
    scale: float  # logit scale, resolved
    scale_spec: str = field(metadata=HOW)  # the text the scale came from; its value (``scale``) is the identity
    params: tuple[tuple[str, Any], ...]  # kernel parameters passed to the call (sorted by name)
    dtype: str
    device: str
    seed: int
    threads: int
    value_bound: float = 1.0
    ref_rows: int = field(default=1024, metadata=HOW)
    min_run_time: float = field(default=0.2, metadata=HOW)
    timer: str = field(default="blocked", metadata=HOW)
    min_repeats: int = field(default=3, metadata=HOW)
    timeout_s: float = field(default=300.0, metadata=HOW)
    time_budget_s: float = field(default=30.0, metadata=HOW)
    memory_fraction: float = field(default=0.5, metadata=HOW)
    workload: str = "attention"  # the workload family's name (ditbench.measure.family)
    setting: tuple[tuple[str, Any], ...] = ()  # the family's own values, e.g. (("blocks", 2), ("model", "DiT-S/8"))
    pass_index: int = 0  # which interleaved pass over the sweep this is (0-based; identity only when > 0)
    passes: int = field(default=1, metadata=HOW)  # passes of the case's spec

    # Fields that say *what* is measured: every field not declared with metadata=HOW (derived below).
    IDENTITY: ClassVar[tuple[str, ...]]

    @property
    def case_id(self) -> str:
        """A stable 16-hex-digit key of the identifying fields (used by ``--resume``)."""
        ident = {name: getattr(self, name) for name in identity_fields(type(self))}
        if not self.pass_index:  # pass 0 keeps the id a single-pass run gave the same point
            ident.pop("pass_index", None)
        ident["params"] = [[k, v] for k, v in self.params]
        ident["setting"] = [[k, v] for k, v in self.setting]
        text = json.dumps(ident, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.dtype]

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.setting)

    def problem(self) -> Problem:
        """The attention problem of one call (for dit: one head of one block)."""
        return Problem(n=self.n, m=self.m, d=self.d, dv=self.dv, dtype=self.torch_dtype, device=self.device,
                       bound=self.bound, scale=self.scale)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def identity_fields(cls: type[Case]) -> tuple[str, ...]:
    """The fields of ``cls`` (Case or a subclass) that define a case's identity: all but the HOW ones."""
    return tuple(f.name for f in fields(cls) if f.metadata.get("identity", True))


Case.IDENTITY = identity_fields(Case)


@dataclass(frozen=True)
class Geometry:
    """The sizes of one point, with every expression evaluated (the part of a case the workload fixes)."""

    n: int
    m: int
    d: int
    dv: int
    bound: float | None
    bound_spec: str
    scale: float
    scale_spec: str
    setting: tuple[tuple[str, Any], ...] = ()


def geometries(spec: SweepSpec) -> list[Geometry]:
    """The sizes of every point of ``spec``, from its workload family."""
    return list(get_family(spec.workload).geometries(spec))


def check_spec(spec: SweepSpec) -> None:
    """Check ``spec`` against the kernel registry and evaluate its expressions on every grid point.

    Raises ValueError naming the field and the allowed values. Nothing is run.
    """
    kernel_op = get_family(spec.workload).kernel_op or spec.op
    for name in spec.kernels:
        if name not in KERNELS:
            raise ValueError(f"{spec.experiment}: unknown kernel {name!r}; registered kernels: {sorted(KERNELS)}")
        if KERNELS[name].op != kernel_op:
            same_op = sorted(k for k, v in KERNELS.items() if v.op == kernel_op)
            raise ValueError(f"{spec.experiment}: kernel {name!r} has op={KERNELS[name].op!r} but the spec "
                             f"(workload {spec.workload!r}, op={spec.op!r}) needs op={kernel_op!r}; "
                             f"kernels with op={kernel_op!r}: {same_op}")
    accepted = set().union(*(KERNELS[k].params for k in spec.kernels))
    unused = sorted(set(spec.param_grid) - accepted)
    if unused:
        raise ValueError(f"{spec.experiment}: params {unused} are accepted by none of the kernels "
                         f"{list(spec.kernels)}; they accept {sorted(accepted) or 'no parameters'}")
    for kernel, grid in spec.kernel_params:
        own = KERNELS[kernel].params
        bad = sorted({name for name, _ in grid} - set(own))
        if bad:
            raise ValueError(f"{spec.experiment}: params.{kernel} {bad}: kernel {kernel!r} does not accept "
                             f"{'them' if len(bad) > 1 else 'it'}; it accepts {sorted(own) or 'no parameters'}")
    for name, _ in spec.per_n:
        if name != "d" and name not in accepted:
            known = sorted(accepted) or "none"
            raise ValueError(f"{spec.experiment}: per_n.{name} is accepted by none of the kernels "
                             f"{list(spec.kernels)}; per_n takes d or a kernel parameter ({known})")
    validate.check_params(spec)  # values against each kernel's schema (ditbench.measure.validate)
    validate.check_size(spec)  # the case count, before anything is expanded
    for geometry in geometries(spec):
        for field_name in ("bound", "scale"):
            value = getattr(geometry, field_name)
            if value is not None and not value > 0:
                where = {"n": geometry.n, "m": geometry.m, "d": geometry.d}
                raise ValueError(f"{spec.experiment}: {field_name} {getattr(geometry, field_name + '_spec')!r} = "
                                 f"{value} at {where}; it must be > 0")


def expand(spec: SweepSpec, *, threads: int, device: str | None = None) -> list[Case]:
    """All cases of ``spec`` in a stable order (n innermost, so the smallest points of every
    setting finish first and a partial run is already useful); ``threads`` is the run's, used
    where the spec does not set its own.

    Each kernel gets the shared parameters it accepts plus its own table (``params.<kernel>``);
    duplicate cases that this produces (e.g. ``exact`` under an ``eps`` grid) are kept once.
    """
    check_spec(spec)
    device = device or spec.device
    threads = spec.threads or threads  # the sweep's own thread count wins (SweepSpec.threads)
    shapes = geometries(spec)
    cases: dict[str, Case] = {}
    for kernel_name, dtype, seed in itertools.product(spec.kernels, spec.dtype, spec.seeds):
        kernel = KERNELS[kernel_name]
        for base_params in _param_product(spec.grid_for(kernel_name, kernel.params)):
            for pass_index, g in itertools.product(range(spec.passes), shapes):
                params = _with_per_n(spec, kernel.params, base_params, g)
                case = Case(
                    experiment=spec.experiment, kernel=kernel_name, op=spec.op, n=g.n, m=g.m, d=g.d, dv=g.dv,
                    bound=g.bound, bound_spec=g.bound_spec, scale=g.scale, scale_spec=g.scale_spec,
                    params=params, dtype=dtype, device=device, seed=seed, threads=threads,
                    value_bound=spec.value_bound, ref_rows=spec.ref_rows, min_run_time=run_time(spec, g.n),
                    timer=spec.timer, min_repeats=spec.min_repeats, timeout_s=spec.timeout_s,
                    time_budget_s=spec.time_budget_s, memory_fraction=spec.memory_fraction,
                    workload=spec.workload, setting=g.setting, pass_index=pass_index, passes=spec.passes,
                )
                cases.setdefault(case.case_id, case)
    validate.check_memory(list(cases.values()))
    return list(cases.values())


SHORTEST_RUN_TIME = 0.02  # seconds: the least min_run_time a small point gets (a few Timer blocks)


def run_time(spec: SweepSpec, n: int) -> float:
    """min_run_time of a point at size ``n``: the spec's, shrunk ∝ n below ``min_run_time_n``
    (cheap small points need few calls for a stable median), never below SHORTEST_RUN_TIME."""
    if spec.min_run_time_n is None or n >= spec.min_run_time_n:
        return spec.min_run_time
    return min(spec.min_run_time, max(SHORTEST_RUN_TIME, spec.min_run_time * n / spec.min_run_time_n))


def _with_per_n(spec: SweepSpec, accepted: Mapping[str, Any], params: tuple[tuple[str, Any], ...],
                g: Geometry) -> tuple[tuple[str, Any], ...]:
    """``params`` plus the kernel parameters that ``per_n`` gives as expressions of n, m, d."""
    extra = {}
    for name, text in spec.per_n:
        if name != "d" and name in accepted:
            try:
                extra[name] = parse_expression(text)(n=g.n, m=g.m, d=g.d)
            except ValueError as err:
                raise ValueError(f"{spec.experiment}: per_n.{name}: {err}") from None
    return tuple(sorted({**dict(params), **extra}.items())) if extra else params


def _param_product(grid: Mapping[str, tuple[Any, ...]]) -> Iterator[tuple[tuple[str, Any], ...]]:
    names = sorted(grid)
    for combo in itertools.product(*(grid[name] for name in names)):
        yield tuple(zip(names, combo))

