"""Workload families: what a sweep's cases wrap around the kernel call — one object per family.

A :class:`Family` says everything the engine needs to know about one kind of workload: the
``setting`` keys a sweep of it takes, the spec fields it derives, which sizes its points have
(``geometries``), how one case is built and scored (``prepare``), and what it costs (``cost``,
``overhead_bytes``, ``setup_flops``) so the runner can skip points over budget. The runner,
timer, memory probe, executors and results store are the same for every family.

Each family is one module, ``ditbench/measure/families/<name>.py``, whose ``FAMILY`` attribute is
its :class:`Family`, registered by one line in :data:`FAMILY_MODULES`. Modules are imported when a
sweep first names the family (the ``dit`` family's model code is not loaded for attention sweeps).
A case's identity (its ``case_id``) is derived from the :class:`~ditbench.measure.cases.Case`
fields and the family's ``setting`` values, so a family adds no identity bookkeeping.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..schema import OPS

if TYPE_CHECKING:  # annotations only: this module stays importable by spec.py without torch
    from ..theory import Cost
    from .cases import Case, Geometry
    from .spec import SweepSpec
    from .workloads import Prepared


@dataclass(frozen=True)
class Family:
    """One workload family (module doc). Callables take a :class:`Case` (its ``op`` included)."""

    name: str  # the sweep's ``workload`` value and the rows' ``workload`` column
    description: str
    geometries: Callable[[SweepSpec], Iterator[Geometry]]  # the sizes of every point of a spec
    prepare: Callable[[Case], Prepared]  # build one case: the call to time and its scoring
    cost: Callable[[Case], Cost | None]  # predicted cost of one timed call (None: no model, never skipped)
    overhead_bytes: Callable[[Case], float]  # memory the measurement needs besides the call's own
    setup_flops: Callable[[Case], float] | None = None  # FLOPs spent once building the case (not timed)
    # float64 FLOPs of the point's accuracy check (reference and any extra scoring call); part of
    # every point's predicted time (ditbench.measure.budget). None: no reference cost model.
    reference_flops: Callable[[Case], float] | None = None
    # keys of the sweep's ``setting`` table → required?
    setting: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    derived: tuple[str, ...] = ()  # spec fields the setting determines; giving them is an error
    kernel_op: str | None = None  # op every kernel must have (None: the sweep's op)
    ops: tuple[str, ...] = OPS  # ops a sweep of this family may measure


# The one place a family is registered: name → module whose FAMILY it is.
FAMILY_MODULES: Mapping[str, str] = MappingProxyType({
    "attention": "ditbench.measure.families.attention",
    "dit": "ditbench.measure.families.dit",
    "stats": "ditbench.measure.families.stats",
})


def family_names() -> tuple[str, ...]:
    return tuple(sorted(FAMILY_MODULES))


def get_family(name: Any) -> Family:
    """The registered family called ``name``; ValueError lists the allowed names."""
    if not isinstance(name, str) or name not in FAMILY_MODULES:
        raise ValueError(f"workload={name!r} is not allowed; allowed values: {list(family_names())}")
    family = importlib.import_module(FAMILY_MODULES[name]).FAMILY
    if not isinstance(family, Family) or family.name != name:
        raise TypeError(f"{FAMILY_MODULES[name]}.FAMILY must be a Family named {name!r}, got {family!r}")
    return family
