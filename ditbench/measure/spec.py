"""Sweep specifications as data: one frozen :class:`SweepSpec` per experiment, loaded from TOML.

A spec lists the axes of a sweep (kernels, n, m, d, dv, entry bound B, scale, dtype, seeds,
kernel parameters); :func:`ditbench.measure.cases.expand` turns it into cases. Everything a
user can get wrong is checked here, before anything runs, with a message that names the field
and the allowed values. Example (one ``[[sweep]]`` table of a preset file)::

    [[sweep]]
    experiment = "E2"
    kernels = ["polynomial"]
    n = {start = 1024, stop = 65536, factor = 2}   # geometric grid 2^10 … 2^16
    d = 4
    bound = [1, "1.0*sqrt(log(n))"]                 # constant B vs the threshold regime
    scale = "1/d"
    params = {eps = [1e-3]}

Kernel parameters come in two forms, mixable in one table: a shared grid (``eps = [1e-3]``: every
kernel that accepts ``eps`` gets it) and a per-kernel table (``performer = {features = [64, 256]}``:
only ``performer`` gets it). A parameter may be given in one place only.

``workload`` says what wraps the attention call: ``"attention"`` (synthetic q, k, v of sizes n, m,
d, dv; E1–E4, E6) or ``"dit"`` (a latent DiT forward/backward with the kernel in every block; E5).
A ``dit`` sweep gives ``setting = {model = "DiT-S/8", image_size = [256, 512], blocks = 2}``
instead of the size fields, which the model determines (n = m = L tokens, d = dv = head dim).
"""
from __future__ import annotations

import math
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .expr import parse_expression
from .family import Family, get_family

DTYPES = ("float32", "float64", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")
TIMERS = ("blocked", "adaptive", "cpu")  # Timer.blocked_autorange / adaptive_autorange; cpu: blocked, CPU-time clock
# Explicit n lists must be geometric (the exponent fit needs evenly spaced log n); ratios may
# differ by rounding to integers, e.g. round(2^(k/2)): 2^(1/2) rounded at n ≥ 64 stays within 2 %.
GEOMETRIC_RTOL = 0.05
# Points one {start, stop, factor} grid may have (2^1 … 2^30 at factor 2 is 30): more is a typo
# such as factor = 1.0000001, refused before the grid is built.
MAX_GRID_POINTS = 1000


MAX_PASSES = 20  # interleaved passes per sweep (each repeats every point)

@dataclass(frozen=True)
class SweepSpec:
    """One experiment's sweep. Axes are tuples; cases are their Cartesian product."""

    experiment: str  # e.g. "E1"; groups rows in results and fits
    kernels: tuple[str, ...]  # names in ditbench.attention.KERNELS
    n: tuple[int, ...] = ()  # query tokens (geometric grid); empty when the workload derives it
    op: str = "forward"  # "forward" | "backward"
    m: tuple[int, ...] | None = None  # key tokens; None means m = n
    d: tuple[int, ...] = (8,)  # q/k feature dim
    dv: tuple[int, ...] | None = None  # value dim; None means dv = d
    bound: tuple[str, ...] = ("1",)  # entry bound B of q, k: number or expression of n, m, d
    scale: tuple[str, ...] = ("1/sqrt(d)",)  # logit scale: number or expression (e.g. "1/d")
    params: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # shared kernel parameter grids, e.g. (("eps", (1e-3,)),)
    # Per-kernel grids: ((kernel, ((name, values), ...)), ...); only that kernel gets them.
    kernel_params: tuple[tuple[str, tuple[tuple[str, tuple[Any, ...]], ...]], ...] = ()
    workload: str = "attention"  # workload family (ditbench.measure.family): what wraps the kernel call
    setting: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # the workload's own axes, e.g. (("model", ("DiT-S/8",)),)
    # Axes that follow n, as expressions of n, m (and d for kernel parameters), evaluated per point:
    # (("d", "round(log2(n)/2)"), ("eps", "n**-0.5")) — the theorem's regime d = Θ(log n), ε = n^−a.
    # "d" replaces the d axis (and dv when dv is not given); any other name is a kernel parameter.
    per_n: tuple[tuple[str, str], ...] = ()
    dtype: tuple[str, ...] = ("float32",)
    device: str = "cpu"
    seeds: tuple[int, ...] = (0,)
    value_bound: float = 1.0  # v ~ U[−value_bound, value_bound]
    min_run_time: float = 0.2  # seconds of timed calls per point (Timer autorange)
    timer: str = "blocked"  # "blocked" | "adaptive"
    min_repeats: int = 3  # at least this many timed blocks (for a meaningful IQR)
    ref_rows: int = 1024  # float64 reference on at most this many seeded random query rows
    passes: int = 1  # interleaved passes over every point, each in a shuffled order (drift → between-pass noise)
    min_run_time_n: int | None = None  # below this n, min_run_time shrinks ∝ n (never below 0.02 s)
    # torch threads of this sweep's timed calls; None: the run's (--threads, [defaults], else 2).
    # A design choice of the sweep (docs/measure.md "Threads"): one thread leaves the second vCPU
    # to everything else, and a parallel region never waits for a descheduled thread.
    threads: int | None = None
    timeout_s: float = 300.0  # per-point wall-clock limit; the worker is killed past it
    time_budget_s: float = 30.0  # skip a point whose predicted single call exceeds this
    memory_fraction: float = 0.5  # skip a point predicted to need more than this share of free memory
    description: str = ""

    def __post_init__(self) -> None:
        _validate(self)
        for name in ("bound", "scale"):  # numbers become their text, so `bound_spec` is always text
            object.__setattr__(self, name, tuple(_expr_text(name, x) for x in getattr(self, name)))

    # ----- conversions ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SweepSpec:
        """Build from a TOML-style mapping (scalars or lists per axis; grids as {start, stop, factor})."""
        known = {f.name for f in fields(cls)} - {"kernel_params"}  # per-kernel grids are written inside `params`
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown spec field(s) {sorted(unknown)}; allowed fields: {sorted(known)}")
        workload = raw.get("workload", "attention")
        family = get_family(workload)
        given = sorted(set(family.derived) & set(raw))
        if given:
            raise ValueError(f"workload {workload!r} derives {list(family.derived)} from its setting; "
                             f"remove {given} from the spec")
        for name in ("experiment", "kernels") + (() if "n" in family.derived else ("n",)):
            if name not in raw:
                raise ValueError(f"spec field {name!r} is required")
        kwargs: dict[str, Any] = dict(raw)
        kwargs["kernels"] = tuple(_as_list("kernels", raw["kernels"]))
        if "n" in raw:
            kwargs["n"] = _grid("n", raw["n"], geometric=True)
        for name in ("m", "dv"):
            if raw.get(name) in (None, "n" if name == "m" else "d"):
                kwargs[name] = None
            else:
                kwargs[name] = _grid(name, raw[name], geometric=False)
        kwargs["setting"] = _setting_grid(workload, family, raw.get("setting", {}))
        if "d" in raw:
            kwargs["d"] = _grid("d", raw["d"], geometric=False)
        for name in ("bound", "scale"):
            if name in raw:
                kwargs[name] = tuple(_expr_text(name, x) for x in _as_list(name, raw[name]))
        for name in ("dtype", "seeds"):
            if name in raw:
                kwargs[name] = tuple(_as_list(name, raw[name]))
        kwargs["params"], kwargs["kernel_params"] = _split_params(raw.get("params", {}), kwargs["kernels"])
        per_n = raw.get("per_n", {})
        if not isinstance(per_n, Mapping) or not all(isinstance(v, str) for v in per_n.values()):
            raise ValueError(f"per_n={per_n!r} must be a table of expressions, e.g. {{d = \"round(log2(n)/2)\"}}")
        kwargs["per_n"] = tuple(sorted(per_n.items()))
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The inverse of :meth:`from_dict` (lists for axes; ``None`` fields left out)."""
        out: dict[str, Any] = {}
        derived = get_family(self.workload).derived
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name in derived or f.name == "kernel_params" or \
                    (f.name == "setting" and not value):
                continue
            if f.name == "params":
                value = {k: list(v) for k, v in value} | {
                    kernel: {k: list(v) for k, v in grid} for kernel, grid in self.kernel_params}
            elif f.name == "setting":
                value = {k: list(v) for k, v in value}
            elif f.name == "per_n":
                if not value:
                    continue
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @property
    def param_grid(self) -> dict[str, tuple[Any, ...]]:
        """The shared parameter grids (every kernel takes those it accepts)."""
        return dict(self.params)

    def grid_for(self, kernel: str, accepted: Collection[str]) -> dict[str, tuple[Any, ...]]:
        """The parameter grids ``kernel`` gets: the shared ones it accepts plus its own table."""
        shared = {name: values for name, values in self.params if name in accepted}
        return shared | dict(dict(self.kernel_params).get(kernel, ()))

    @property
    def setting_grid(self) -> dict[str, tuple[Any, ...]]:
        return dict(self.setting)


# How each pass of a multi-pass run is ordered (ditbench.measure.runner.interleaved): "shuffle" —
# every point of the pass in one seeded shuffled order; "blocks" — the points of each fit group
# (a setting: everything but n) back to back in shuffled order, the groups in shuffled order, so
# one group's sizes in a pass share the machine's state of those seconds.
ORDERS: tuple[str, ...] = ("shuffle", "blocks")


@dataclass(frozen=True)
class RunDefaults:
    """A preset's ``[defaults]`` table: the ``ditbench run`` options it was designed for
    (``threads``, ``executor``, ``workers``); options given on the command line win. ``order``
    says how the runner orders each pass (:data:`ORDERS`; ditbench.measure.runner.interleaved)."""

    threads: int | None = None
    executor: str | None = None
    workers: int | None = None
    order: str | None = None

    def __post_init__(self) -> None:
        for name in ("threads", "workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"[defaults] {name} = {value!r} must be an integer ≥ 1")
        if self.executor is not None and self.executor not in EXECUTOR_NAMES:
            raise ValueError(f"[defaults] executor = {self.executor!r}; allowed: {', '.join(EXECUTOR_NAMES)}")
        if self.order is not None and self.order not in ORDERS:
            raise ValueError(f"[defaults] order = {self.order!r}; allowed: {', '.join(ORDERS)}")
        if self.workers is not None and self.executor not in ("pool", "dask"):
            raise ValueError("[defaults] workers needs executor = \"pool\" or \"dask\"")

    @classmethod
    def from_dict(cls, raw: Any) -> RunDefaults:
        if not isinstance(raw, Mapping):
            raise ValueError(f"[defaults] must be a table; got {type(raw).__name__}")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown [defaults] key(s) {sorted(unknown)}; allowed: threads, executor, workers, "
                             f"order")
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


# The executors a preset (or --executor) may name → the options each takes from the command line or
# a preset's [defaults]. Their factories are ditbench.measure.executor.EXECUTORS; the names live here,
# without the executors' imports, so the spec loader and `ditbench run --help` load no torch.
EXECUTOR_OPTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "worker": (), "in-process": (), "pool": ("workers",), "dask": ("scheduler", "workers"),
})
EXECUTOR_NAMES = tuple(EXECUTOR_OPTIONS)


@dataclass(frozen=True)
class Preset:
    """A named list of sweeps (one per experiment), e.g. ``smoke``, ``default``, ``full``."""

    name: str
    specs: tuple[SweepSpec, ...]
    description: str = ""
    source: str = field(default="", compare=False)  # file it came from, for meta.json
    defaults: RunDefaults = field(default_factory=RunDefaults)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.defaults.to_dict():
            out["defaults"] = self.defaults.to_dict()
        return {**out, "sweep": [s.to_dict() for s in self.specs]}


def load_preset_text(text: str, *, name: str, source: str = "") -> Preset:
    """Parse a preset/config TOML document: optional ``description`` and one ``[[sweep]]`` per spec."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{source or name}: invalid TOML: {err}") from None
    except RecursionError:  # tomllib recurses once per nested array or table
        raise ValueError(f"{source or name}: TOML nested too deeply to be a sweep file") from None
    unknown = set(raw) - {"description", "sweep", "name", "defaults"}
    if unknown:
        raise ValueError(f"{source or name}: unknown top-level key(s) {sorted(unknown)}; "
                         f"allowed: description, name, [defaults], [[sweep]]")
    try:
        defaults = RunDefaults.from_dict(raw.get("defaults", {}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source or name}: {err}") from None
    sweeps = raw.get("sweep")
    if not isinstance(sweeps, list) or not sweeps:
        raise ValueError(f"{source or name}: needs at least one [[sweep]] table")
    specs = []
    for i, table in enumerate(sweeps):
        try:
            specs.append(SweepSpec.from_dict(table))
        except ValueError as err:
            raise ValueError(f"{source or name}: [[sweep]] #{i + 1} ({table.get('experiment', '?')}): {err}") from None
    return Preset(name=str(raw.get("name", name)), specs=tuple(specs), description=str(raw.get("description", "")),
                  source=source, defaults=defaults)


def load_config(path: str | Path) -> Preset:
    """Load a user config file (same format as the shipped presets)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    return load_preset_text(path.read_text(), name=path.stem, source=str(path))


def dump_toml(preset: Preset) -> str:
    """Write ``preset`` as TOML that :func:`load_preset_text` reads back to an equal preset."""
    lines = [f"name = {_toml_value(preset.name)}", f"description = {_toml_value(preset.description)}"]
    if preset.defaults.to_dict():
        lines += ["", "[defaults]"] + [f"{key} = {_toml_value(v)}" for key, v in preset.defaults.to_dict().items()]
    for spec in preset.specs:
        lines += ["", "[[sweep]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in spec.to_dict().items()]
    return "\n".join(lines) + "\n"


# ----- helpers --------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-tripping form; TOML reads 1e-06 and 0.001 alike
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) as TOML")


def _as_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"spec field {name!r} is an empty list; give at least one value")
        return list(value)
    return [value]


def _grid(name: str, value: Any, *, geometric: bool) -> tuple[int, ...]:
    """An int axis: a number, a list, or a geometric grid {start, stop, factor} (stop inclusive)."""
    if isinstance(value, Mapping):
        if set(value) != {"start", "stop", "factor"}:
            raise ValueError(f"grid {name!r} must have exactly the keys start, stop, factor; got {sorted(value)}")
        start, stop, factor = value["start"], value["stop"], value["factor"]
        if not (_is_int(start) and start >= 1 and _is_int(stop) and stop >= start):
            raise ValueError(f"grid {name!r}: need integers 1 ≤ start ≤ stop, got start={start}, stop={stop}")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (1 < factor < math.inf):
            raise ValueError(f"grid {name!r}: factor={factor} must be a number > 1 and finite (geometric grid)")
        points = math.floor(math.log(stop / start) / math.log(factor)) + 1
        if points > MAX_GRID_POINTS:
            raise ValueError(f"grid {name!r}: start={start}, stop={stop}, factor={factor} has about {points:,} "
                             f"points, over the limit of {MAX_GRID_POINTS}; use a larger factor")
        out, k = [], 0
        while round(start * factor**k) <= stop:
            out.append(int(round(start * factor**k)))
            k += 1
        return tuple(dict.fromkeys(out))  # rounding can repeat a value at small start
    values = _as_list(name, value)
    if not all(_is_int(x) and x >= 1 for x in values):
        raise ValueError(f"spec field {name!r} must be integers ≥ 1 (or a {{start, stop, factor}} grid), "
                         f"got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"spec field {name!r} repeats a value: {values}")
    if geometric and len(values) >= 3:
        ratios = [b / a for a, b in zip(values, values[1:])]
        if min(ratios) <= 1 or max(ratios) > min(ratios) * (1 + GEOMETRIC_RTOL):
            raise ValueError(
                f"spec field {name!r} = {values} is not a geometric grid (increasing, constant ratio within "
                f"{GEOMETRIC_RTOL:.0%}); ratios are {[round(r, 3) for r in ratios]}. Use {{start, stop, factor}}"
            )
    return tuple(int(x) for x in values)


def _expr_text(name: str, value: Any) -> str:
    if isinstance(value, bool) or value is None and name != "scale":
        raise ValueError(f"spec field {name!r} must be a number or an expression, got {value!r}")
    if value is None:
        return "1/sqrt(d)"  # None means 1/√d, as in torch SDPA (DESIGN §2)
    if isinstance(value, (int, float)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"spec field {name!r} = {value} must be finite and > 0")
        return repr(value)
    if not isinstance(value, str):
        raise ValueError(f"spec field {name!r} must be a number or an expression string, got {value!r}")
    try:
        parse_expression(value)
    except ValueError as err:
        raise ValueError(f"spec field {name!r}: {err}") from None
    return value.strip()


def _split_params(params: Any, kernels: Sequence[str]) -> tuple[tuple, tuple]:
    """``params`` table → (shared grids, per-kernel grids); a table value is a kernel's own grid."""
    if not isinstance(params, Mapping):
        raise ValueError(f"spec field 'params' must be a table of name = value or [values] "
                         f"(or kernel = {{name = [values]}}), got {params!r}")
    shared, own = [], []
    for key, value in params.items():
        if not isinstance(value, Mapping):
            shared.append((str(key), tuple(_as_list(f"params.{key}", value))))
            continue
        if key not in kernels:
            raise ValueError(f"params.{key} is a per-kernel table, but {key!r} is not in kernels {list(kernels)}")
        if not value:
            raise ValueError(f"params.{key} is an empty table; give name = [values] or remove it")
        bad = [name for name, v in value.items() if isinstance(v, Mapping)]
        if bad:
            raise ValueError(f"params.{key}.{bad[0]} must be a value or a list of values, not a table")
        grid = sorted((str(k), tuple(_as_list(f"params.{key}.{k}", v))) for k, v in value.items())
        own.append((str(key), tuple(grid)))
    shared_names = {name for name, _ in shared}
    for kernel, kernel_grid in own:
        twice = sorted(shared_names & {name for name, _ in kernel_grid})
        if twice:
            raise ValueError(f"params {twice} are given both shared and in params.{kernel}; give each in one place")
    return tuple(sorted(shared)), tuple(sorted(own))


def _setting_grid(workload: str, family: Family, setting: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(setting, Mapping):
        raise ValueError(f"spec field 'setting' must be a table of name = value or [values], got {setting!r}")
    unknown = sorted(set(setting) - set(family.setting))
    if unknown:
        raise ValueError(f"setting {unknown} not allowed for workload {workload!r}; "
                         f"allowed: {sorted(family.setting) or 'none'}")
    missing = sorted(k for k, required in family.setting.items() if required and k not in setting)
    if missing:
        raise ValueError(f"workload {workload!r} needs setting {missing} (allowed: {sorted(family.setting)})")
    return tuple(sorted((str(k), tuple(_as_list(f"setting.{k}", v))) for k, v in setting.items()))


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _validate(spec: SweepSpec) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(message)

    need(isinstance(spec.experiment, str) and bool(spec.experiment),
         f"experiment must be a non-empty string, got {spec.experiment!r}")
    family = get_family(spec.workload)
    need("n" in family.derived or bool(spec.n), "spec field 'n' is required")
    _setting_grid(spec.workload, family, {k: list(v) for k, v in spec.setting})
    need(bool(spec.kernels) and all(isinstance(k, str) for k in spec.kernels),
         f"kernels must be a non-empty list of names, got {spec.kernels!r}")
    need(spec.op in family.ops, f"op={spec.op!r} is not allowed; allowed values: {list(family.ops)}")
    need(spec.device in DEVICES, f"device={spec.device!r} is not allowed; allowed values: {list(DEVICES)}")
    bad = [x for x in spec.dtype if x not in DTYPES]
    need(not bad, f"dtype {bad} not allowed; allowed values: {list(DTYPES)}")
    need(spec.timer in TIMERS, f"timer={spec.timer!r} is not allowed; allowed values: {list(TIMERS)}")
    for name in ("n", "d") + (("m",) if spec.m else ()) + (("dv",) if spec.dv else ()):
        values = getattr(spec, name)
        need(name in family.derived or bool(values) and all(_is_int(x) and x >= 1 for x in values),
             f"{name}={values!r} must be integers ≥ 1")
    need(all(_is_int(s) and s >= 0 for s in spec.seeds) and bool(spec.seeds),
         f"seeds={spec.seeds!r} must be integers ≥ 0")
    for name in ("bound", "scale"):
        for text in getattr(spec, name):
            _expr_text(name, text)
    for name, low, high in (("value_bound", 0, math.inf), ("min_run_time", 0, 3600), ("timeout_s", 0, 86400),
                            ("time_budget_s", 0, 86400), ("memory_fraction", 0, 1)):
        value = getattr(spec, name)
        need(isinstance(value, (int, float)) and not isinstance(value, bool) and low < value <= high,
             f"{name}={value!r} must be a number in ({low}, {high}]")
    need(_is_int(spec.min_repeats) and spec.min_repeats >= 1,
         f"min_repeats={spec.min_repeats!r} must be an integer ≥ 1")
    need(_is_int(spec.ref_rows) and spec.ref_rows >= 1, f"ref_rows={spec.ref_rows!r} must be an integer ≥ 1")
    need(_is_int(spec.passes) and 1 <= spec.passes <= MAX_PASSES,
         f"passes={spec.passes!r} must be an integer in [1, {MAX_PASSES}]")
    need(spec.threads is None or (_is_int(spec.threads) and spec.threads >= 1),
         f"threads={spec.threads!r} must be an integer ≥ 1 (or absent: the run's threads)")
    need(spec.min_run_time_n is None or (_is_int(spec.min_run_time_n) and spec.min_run_time_n >= 1),
         f"min_run_time_n={spec.min_run_time_n!r} must be an integer ≥ 1 (or absent)")
    need(len(set(spec.kernels)) == len(spec.kernels), f"kernels {list(spec.kernels)} repeat a name")
    need(all(isinstance(v, tuple) and v for _, v in spec.params),
         f"params values must be non-empty lists: {spec.params!r}")
    for name, text in spec.per_n:
        try:
            parse_expression(text)
        except ValueError as err:
            raise ValueError(f"{spec.experiment}: per_n.{name} = {text!r}: {err}") from None
        need(name not in {p for p, _ in spec.params} | {p for _, g in spec.kernel_params for p, _ in g},
             f"per_n.{name} is also given in params; give it in one place")
    for kernel, grid in spec.kernel_params:
        need(kernel in spec.kernels, f"params.{kernel} is a per-kernel table, but {kernel!r} is not in kernels "
                                     f"{list(spec.kernels)}")
        need(bool(grid) and all(isinstance(v, tuple) and v for _, v in grid),
             f"params.{kernel} values must be non-empty lists: {grid!r}")
        twice = sorted({name for name, _ in spec.params} & {name for name, _ in grid})
        need(not twice, f"params {twice} are given both shared and in params.{kernel}; give each in one place")

