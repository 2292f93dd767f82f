"""Expand a :class:`SweepSpec` into concrete, hashable :class:`Case` objects.

A case is everything one measured point needs, with every expression already evaluated, so it
can be shipped to a worker process (or a remote executor) and recorded as one results row. Its
``case_id`` (a hash of the identifying fields) keys ``--resume``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..attention import KERNELS, Kernel, Problem
from .expr import parse_expression
from .spec import SweepSpec

TORCH_DTYPES: Mapping[str, torch.dtype] = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
}


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
    bound: float  # entry bound B (q, k ~ U[−B, B]); for op="backward", of a1 and a2
    bound_spec: str  # the expression B came from, e.g. "1.0*sqrt(log(n))"
    scale: float  # logit scale, resolved
    scale_spec: str
    params: tuple[tuple[str, Any], ...]  # kernel parameters passed to the call (sorted by name)
    dtype: str
    device: str
    seed: int
    threads: int
    value_bound: float = 1.0
    ref_rows: int = 1024
    min_run_time: float = 0.2
    timer: str = "blocked"
    min_repeats: int = 3
    timeout_s: float = 300.0
    time_budget_s: float = 30.0
    memory_fraction: float = 0.5

    # Fields that say *what* is measured (not how long to time it): they define the case's identity.
    IDENTITY = ("experiment", "kernel", "op", "n", "m", "d", "dv", "bound", "bound_spec", "scale",
                "params", "dtype", "device", "seed", "threads", "value_bound")

    @property
    def case_id(self) -> str:
        """A stable 16-hex-digit key of the identifying fields (used by ``--resume``)."""
        ident = {name: getattr(self, name) for name in self.IDENTITY}
        ident["params"] = [[k, v] for k, v in self.params]
        text = json.dumps(ident, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.dtype]

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def problem(self) -> Problem:
        return Problem(n=self.n, m=self.m, d=self.d, dv=self.dv, dtype=self.torch_dtype, device=self.device,
                       bound=self.bound, scale=self.scale)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_spec(spec: SweepSpec) -> None:
    """Check ``spec`` against the kernel registry and evaluate its expressions on every grid point.

    Raises ValueError naming the field and the allowed values. Nothing is run.
    """
    for name in spec.kernels:
        if name not in KERNELS:
            raise ValueError(f"{spec.experiment}: unknown kernel {name!r}; registered kernels: {sorted(KERNELS)}")
        if KERNELS[name].op != spec.op:
            same_op = sorted(k for k, v in KERNELS.items() if v.op == spec.op)
            raise ValueError(f"{spec.experiment}: kernel {name!r} has op={KERNELS[name].op!r} but the spec has "
                             f"op={spec.op!r}; kernels with op={spec.op!r}: {same_op}")
    accepted = set().union(*(KERNELS[k].params for k in spec.kernels))
    unused = sorted(set(spec.param_grid) - accepted)
    if unused:
        raise ValueError(f"{spec.experiment}: params {unused} are accepted by none of the kernels "
                         f"{list(spec.kernels)}; they accept {sorted(accepted) or 'no parameters'}")
    for n, m, d in itertools.product(spec.n, spec.m or (None,), spec.d):
        values = {"n": n, "m": n if m is None else m, "d": d}
        for field_name in ("bound", "scale"):
            for text in getattr(spec, field_name):
                value = _evaluate(field_name, text, values, spec.experiment)
                if not value > 0:
                    raise ValueError(f"{spec.experiment}: {field_name} {text!r} = {value} at {values}; it must be > 0")


def expand(spec: SweepSpec, *, threads: int, device: str | None = None) -> list[Case]:
    """All cases of ``spec`` in a stable order (n innermost, so the smallest points of every
    setting finish first and a partial run is already useful).

    Parameters that a kernel does not accept are dropped for that kernel, and duplicate cases that
    this produces (e.g. ``exact`` under an ``eps`` grid) are kept once.
    """
    check_spec(spec)
    device = device or spec.device
    cases: dict[str, Case] = {}
    for kernel_name, dtype, seed, d, bound_text, scale_text in itertools.product(
        spec.kernels, spec.dtype, spec.seeds, spec.d, spec.bound, spec.scale
    ):
        kernel = KERNELS[kernel_name]
        for params in _param_product(kernel, spec.param_grid):
            for dv in spec.dv or (d,):
                for m_value in spec.m or (None,):
                    for n in spec.n:
                        m = n if m_value is None else m_value
                        values = {"n": n, "m": m, "d": d}
                        case = Case(
                            experiment=spec.experiment, kernel=kernel_name, op=spec.op, n=n, m=m, d=d, dv=dv,
                            bound=_evaluate("bound", bound_text, values, spec.experiment), bound_spec=bound_text,
                            scale=_evaluate("scale", scale_text, values, spec.experiment), scale_spec=scale_text,
                            params=params, dtype=dtype, device=device, seed=seed, threads=threads,
                            value_bound=spec.value_bound, ref_rows=spec.ref_rows, min_run_time=spec.min_run_time,
                            timer=spec.timer, min_repeats=spec.min_repeats, timeout_s=spec.timeout_s,
                            time_budget_s=spec.time_budget_s,
                            memory_fraction=spec.memory_fraction,
                        )
                        cases.setdefault(case.case_id, case)
    return list(cases.values())


def _param_product(kernel: Kernel, grid: Mapping[str, tuple[Any, ...]]) -> Iterator[tuple[tuple[str, Any], ...]]:
    own = {name: values for name, values in sorted(grid.items()) if name in kernel.params}
    for combo in itertools.product(*own.values()):
        yield tuple(zip(own, combo))


def _evaluate(field_name: str, text: str, values: Mapping[str, int], experiment: str) -> float:
    try:
        return parse_expression(text)(**values)
    except ValueError as err:
        raise ValueError(f"{experiment}: {field_name}: {err}") from None
