"""Kernel registry: name → :class:`Kernel`, each declaring what it supports and why it refuses.

Forward kernels are called ``kernel(q, k, v, scale=None, **params)`` with ``q (..., n, d)``,
``k (..., m, d)``, ``v (..., m, dv)``. Backward kernels (``op="backward"``, registered by
:mod:`ditbench.gradient`) are called ``kernel(a1, a2, a3, x, y, e, scale=None, **params)``.

Registration has one path, :func:`load_kernels`: it imports the built-in kernel modules
(:data:`BUILTIN_MODULES`), then every module named in the ``ditbench.kernels`` entry-point group,
then any modules passed to it. A kernel module registers its kernels with :func:`register` when
imported. ``import ditbench.attention`` calls ``load_kernels()``; the measurement worker calls it
with the modules its executor names, so a third-party kernel plugs in the same way in the runner
and the worker (the report needs no kernel: result rows describe themselves)::

    # pyproject.toml of a plugin package
    [project.entry-points."ditbench.kernels"]
    my_kernels = "my_package.kernels"   # a module that calls ditbench.attention.register(Kernel(...))
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch

from .._checks import Param, check_params
from ..theory import Cost

Op = Literal["forward", "backward"]
ALL_FLOAT = frozenset({torch.float32, torch.float64})


@dataclass(frozen=True)
class Problem:
    """The shape of one attention problem as the registry sees it (no tensors)."""

    n: int  # query tokens
    m: int  # key/value tokens
    d: int  # q/k feature dim
    dv: int  # value dim
    dtype: torch.dtype = torch.float32
    device: str = "cpu"  # device type: "cpu" | "cuda"
    bound: float | None = None  # entry bound B of q and k (inputs in [−B, B]); None = unknown
    scale: float | None = None  # logit scale; None means 1/√d

    @property
    def resolved_scale(self) -> float:
        return 1.0 / self.d**0.5 if self.scale is None else self.scale

    def radius_bound(self) -> float | None:
        """Upper bound on every |logit| from the entry bound: scale·(√d·B)² = scale·d·B²."""
        return None if self.bound is None else self.resolved_scale * self.d * self.bound**2


@dataclass(frozen=True)
class Kernel:
    name: str
    fn: Callable[..., Any]
    op: Op = "forward"
    exact: bool = False  # True: computes the exact answer up to rounding
    description: str = ""
    dtypes: frozenset[torch.dtype] = ALL_FLOAT
    devices: frozenset[str] = frozenset({"cpu", "cuda"})
    # Keyword parameters the kernel accepts beyond ``scale``, with their defaults.
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Declared type and range of every parameter (ditbench._checks.Param): checked when a sweep is
    # loaded (before any worker starts) and at every call.
    schema: Mapping[str, Param] = field(default_factory=lambda: MappingProxyType({}))
    # Predicted cost for a problem and parameters (used to skip points over budget).
    cost: Callable[[Problem, Mapping[str, Any]], Cost] | None = None
    # Extra, kernel-specific refusals: return readable reasons (empty list = supported).
    limits: Callable[[Problem, Mapping[str, Any]], list[str]] | None = None
    # What the kernel uses, e.g. {"degree": 6, "rank": 3003, "radius": 4.1}, recorded beside each timing:
    # ``describe(problem, params)`` predicts it (worst-case radius); ``describe(problem, params,
    # inputs, rows)`` states what a call on those inputs runs (realised radius) and, where the kernel
    # has one, its guarantee on the query ``rows`` (err_bound, rounding_bound).
    describe: Callable[..., Mapping[str, Any]] | None = None
    # Registered kernel this one approximates when that is not softmax attention (measure also
    # scores the kernel against it, in the err_target_* columns).
    target: str | None = None

    def __call__(self, *tensors: torch.Tensor, scale: float | None = None, **params: Any) -> Any:
        unknown = set(params) - set(self.params)
        if unknown:
            raise ValueError(
                f"kernel {self.name!r} does not take parameter(s) {sorted(unknown)}; "
                f"it accepts {sorted(self.params) or 'none'}"
            )
        check_params(self.name, self.schema, params)
        return self.fn(*tensors, scale=scale, **params)

    def check_params(self, params: Mapping[str, Any]) -> None:
        """ValueError naming the kernel, parameter, value and limit for any value outside its schema."""
        check_params(self.name, self.schema, params)

    def resolved_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with the accepted subset of ``params`` (others are ignored)."""
        out = dict(self.params)
        out.update({key: val for key, val in params.items() if key in self.params})
        return out

    def unsupported_reasons(self, problem: Problem, params: Mapping[str, Any] | None = None) -> list[str]:
        """Why this kernel cannot run ``problem`` (empty when it can)."""
        reasons: list[str] = []
        if problem.dtype not in self.dtypes:
            reasons.append(f"{self.name} supports dtypes {sorted(str(d) for d in self.dtypes)}, not {problem.dtype}")
        if problem.device not in self.devices:
            reasons.append(f"{self.name} supports devices {sorted(self.devices)}, not {problem.device}")
        if self.limits is not None:
            reasons.extend(self.limits(problem, self.resolved_params(params or {})))
        return reasons

    def predicted_cost(self, problem: Problem, params: Mapping[str, Any] | None = None) -> Cost | None:
        return None if self.cost is None else self.cost(problem, self.resolved_params(params or {}))


KERNELS: dict[str, Kernel] = {}


def register(kernel: Kernel) -> Kernel:
    """Add ``kernel`` to :data:`KERNELS` (names are unique)."""
    if kernel.name in KERNELS:
        raise ValueError(f"kernel {kernel.name!r} is already registered")
    KERNELS[kernel.name] = kernel
    return kernel


# Modules whose import registers ditbench's own kernels (forward, peers, backward).
BUILTIN_MODULES: tuple[str, ...] = (
    "ditbench.attention.exact", "ditbench.attention.polynomial", "ditbench.attention.polynomial_triton",
    "ditbench.attention.peers", "ditbench.gradient",
)
ENTRY_POINT_GROUP = "ditbench.kernels"
_plugins_loaded = False


def load_kernels(modules: Sequence[str] = ()) -> Mapping[str, Kernel]:
    """Register the built-in kernels, the ``ditbench.kernels`` entry points, then ``modules``
    (importable module names); return the registry. Safe to call again (each module registers
    once per process). A plugin that fails to import raises ImportError naming it."""
    global _plugins_loaded
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    if not _plugins_loaded:
        _plugins_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                point.load()
            except Exception as err:  # re-raised with the plugin's name: a broken plugin is a failure
                raise ImportError(f"kernel plugin {point.name!r} ({point.value}) failed to load: "
                                  f"{type(err).__name__}: {err}") from err
    for module in modules:
        importlib.import_module(module)
    return MappingProxyType(KERNELS)


def get_kernel(name: str) -> Kernel:
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(f"unknown kernel {name!r}; registered kernels: {sorted(KERNELS)}") from None
