"""Checks a sweep must pass when it is loaded, before any case is built or any worker starts.

* every kernel parameter value against the kernel's declared schema (``Kernel.schema``, types and
  ranges; :class:`ditbench._checks.Param`), so ``eps = [2.0]`` or ``degree = [60]`` is an error
  naming the value and the limit rather than a run whose every row failed;
* the number of cases: at most :data:`MAX_CASES` per sweep (counted from the axes' lengths, before
  anything is expanded, so a huge product is refused at once, with the count);
* memory: a (kernel, parameters) series with explicit parameters whose *smallest* point is predicted
  to need more than the machine's total memory can never run here — the parameter is the mistake
  (``features = [10**9]``) — so it is refused too. Points that merely exceed today's budget, and
  series at the kernel's defaults, are recorded as skipped, with the reason, by the runner (DESIGN §4).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._checks import total_memory
from ..errors import KernelRefusal

if TYPE_CHECKING:
    from .cases import Case
    from .spec import SweepSpec

# Cases one sweep may expand to. The full preset is ~1,500; a sweep beyond this is a typo (an axis
# given as a long list, a grid factor barely above 1), and expanding it would take minutes.
MAX_CASES = 20_000


def check_params(spec: SweepSpec) -> None:
    """Every value of every parameter grid against the schema of each kernel that receives it."""
    from ..attention import KERNELS

    for name in spec.kernels:
        kernel = KERNELS[name]
        for param, values in spec.grid_for(name, kernel.params).items():
            for value in values:
                try:
                    kernel.check_params({param: value})
                except ValueError as err:
                    raise ValueError(f"{spec.experiment}: params{_where(spec, name, param)}: {err}") from None


def _where(spec: SweepSpec, kernel: str, param: str) -> str:
    own = dict(dict(spec.kernel_params).get(kernel, ()))
    return f".{kernel}.{param}" if param in own else f".{param}"


def case_count(spec: SweepSpec) -> int:
    """An upper bound on the cases ``spec`` expands to, from the lengths of its axes (nothing built)."""
    from ..attention import KERNELS

    sizes = [len(spec.n) or 1, len(spec.m or ()) or 1, len(spec.d), len(spec.dv or ()) or 1, len(spec.bound),
             len(spec.scale)] + [len(values) for _, values in spec.setting]
    geometry = math.prod(sizes)
    total = 0
    for name in spec.kernels:
        grids = spec.grid_for(name, KERNELS[name].params).values()
        total += math.prod(len(values) for values in grids) * len(spec.dtype) * len(spec.seeds) * geometry
    return total


def check_size(spec: SweepSpec) -> None:
    count = case_count(spec)
    if count > MAX_CASES:
        raise ValueError(f"{spec.experiment}: the sweep expands to {count:,} cases, over the limit of "
                         f"{MAX_CASES:,} per sweep; shorten an axis or split the sweep")


def check_memory(cases: Sequence[Case]) -> None:
    """Refuse a (kernel, parameters) series whose smallest point needs more than the device's total
    memory (the kernels' own cost models; a model that refuses the point leaves it to the runner)."""
    from ..attention import KERNELS

    smallest: dict[tuple, tuple[float, Case]] = {}
    totals: dict[str, float] = {}
    for case in cases:
        if case.workload != "attention" or not case.params:
            continue  # other families' costs are the workload's (ditbench.measure.workloads), checked at run time
        try:
            cost = KERNELS[case.kernel].predicted_cost(case.problem(), case.kwargs)
        except (ValueError, KernelRefusal):
            continue  # the kernel refuses this point: recorded as skipped, with its reason
        if cost is None:
            continue
        key = (case.experiment, case.kernel, case.params, case.dtype, case.device)
        if key not in smallest or cost.bytes < smallest[key][0]:
            smallest[key] = (cost.bytes, case)
    for need, case in smallest.values():
        have = totals.setdefault(case.device, total_memory(case.device) if case.device == "cpu" else math.inf)
        if need > have:
            params = ", ".join(f"{k}={v!r}" for k, v in case.params)
            raise ValueError(f"{case.experiment}: {case.kernel} ({params}) needs {need / 2**30:.3g} GiB even at its "
                             f"smallest point (n={case.n}, d={case.d}), more than this machine's "
                             f"{have / 2**30:.3g} GiB in all; lower the parameter")
