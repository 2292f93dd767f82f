"""The results schema: every column of ``results.csv`` and ``fits.csv``, and the one reader.

Torch-free on purpose (pandas only, imported when a file is read): measure writes through it, fit
and report read through it, and none of them needs a kernel to know what a column means. DESIGN §5 lists the required
columns; the extras below are documented here, once.

A column is a :class:`Column`: its name, dtype (``text``, ``int``, ``float``, ``bool``), whether DESIGN §5
requires it, whether it is a *setting* (a candidate group key for ``ditbench fit``'s default
grouping) and a one-line meaning.

NA rules (the same for every file and every reader of it):

* **written** (:func:`cell`): ``None`` → an empty cell; a float NaN → ``nan``; ±∞ → ``inf`` /
  ``-inf``; every other value as ``repr`` (floats) or ``str``.
* **read** (:func:`read_results`, :func:`read_fits`): an empty cell is missing in every column
  (NaN in numeric columns, ``<NA>`` in text columns). Text columns keep every other text as
  written (a kernel called ``NA``, a bound_spec of ``1``); numeric columns also read ``nan``,
  ``inf`` and ``-inf``; any other text in a numeric column is an error naming file, column, value.
  An ``int`` column is ``int64`` when every cell is filled and integral, else ``float64`` with NaN.
  A ``bool`` column (written ``True`` / ``False``) reads ``true``/``false``/``1``/``0`` in any
  case, as pandas' nullable ``boolean``.
  Columns the schema does not know (parameters in a hand-made timing CSV) are text unless every
  filled cell is a number: ``int64`` when every cell is written as an integer, else ``float64``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a file is read: the column lists load no pandas (the CLI's help)
    import pandas as pd

DTYPES = ("text", "int", "float", "bool")
_TRUE, _FALSE = ("true", "1"), ("false", "0")


@dataclass(frozen=True)
class Column:
    """One column of a results or fits file."""

    name: str
    dtype: str  # one of DTYPES
    meaning: str  # one line: what the value is, in what units
    required: bool = False  # DESIGN §5 requires it in every results.csv
    key: bool = False  # a setting of the measured point (fit groups by it by default), not a measurement

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"column {self.name!r}: dtype {self.dtype!r} is not one of {list(DTYPES)}")


def _c(name: str, dtype: str, meaning: str, **kw: bool) -> Column:
    return Column(name, dtype, meaning, **kw)


# The stats family's own columns (E7/E8, ditbench.stats; empty on every other row). Score errors are
# root-mean σ_t-weighted, √E_t E_x[σ_t‖P(s − ∇log p_t)‖²] with t ~ U[0.01, 5] (docs/stats.md).
STATS: tuple[Column, ...] = (
    _c("network", "text", "stats: latent (W_B f(W_Bᵀx, t)/σ − x/σ) | ambient (matched-size baseline, no W_B)",
       key=True),
    _c("train_samples", "int", "stats: n, the training-set size", key=True),
    _c("ambient_dim", "int", "stats: D, the ambient dimension", key=True),
    _c("latent_dim", "int", "stats: d0, the latent dimension", key=True),
    _c("param_count", "int", "stats: trainable parameters of the network"),
    _c("train_s", "float", "stats: wall seconds of the DSM training (synchronised on CUDA)"),
    _c("train_loss", "float", "stats: mean DSM loss over the last 10 % of the steps"),
    _c("train_steps", "int", "stats: optimiser steps"),
    _c("score_err", "float", "stats: σ-weighted RMS error of the network's score against the analytic score"),
    _c("score_err_on", "float", "stats: the same, of the part on the subspace, BBᵀ(s − ∇log p_t)"),
    _c("score_err_off", "float", "stats: the same, of the part off the subspace, (I − BBᵀ)(s − ∇log p_t)"),
    _c("score_ref", "float", "stats: √E[σ_t‖∇log p_t‖²], the target's size (for relative errors)"),
    _c("subspace_err", "float", "stats: ‖W_B W_Bᵀ − BBᵀ‖_F of the latent network (empty for ambient)"),
    _c("sample_mmd", "float", "stats: Gaussian-kernel MMD (V-statistic, median-heuristic width) of reverse-SDE "
       "samples to fresh data"),
    _c("sample_mmd_exact", "float", "stats: the same with the analytic score in the same sampler (its floor)"),
    _c("sample_mmd_floor", "float", "stats: the same between two fresh data samples (the estimator's floor)"),
    _c("projection", "text", "stats: JSON {\"model\": [[u, v], …], \"data\": …}, samples in B's first two "
       "latent coordinates (for the report)"),
)
STATS_COLUMNS: tuple[str, ...] = tuple(c.name for c in STATS)

##################################################################################################
# results.csv — DESIGN §5 (required, in this order), then the documented extras
##################################################################################################
RESULTS: tuple[Column, ...] = (
    _c("experiment", "text", "experiment name from the preset (E1, E2, …)", required=True, key=True),
    _c("kernel", "text", "registered kernel name (attention or gradient registry)", required=True, key=True),
    _c("op", "text", "forward | backward (one of OPS)", required=True, key=True),
    _c("n", "int", "query rows (tokens); for dit, tokens per image", required=True),
    _c("m", "int", "key/value rows", required=True),
    _c("d", "int", "head dimension of q and k", required=True, key=True),
    _c("dv", "int", "head dimension of v", required=True, key=True),
    _c("bound", "float", "entry bound B: q, k ~ U[−B, B] (empty when unknown, e.g. dit)", required=True, key=True),
    _c("scale", "float", "logit scale s in exp(s·⟨q, k⟩)", required=True, key=True),
    _c("eps", "float", "target relative error of the kernel's approximation (empty for exact kernels)",
       required=True, key=True),
    _c("degree", "int", "polynomial degree that ran (empty when not a polynomial kernel)", required=True, key=True),
    _c("rank", "int", "feature rank that ran (polynomial: C(g+d, d); peers: features/landmarks)",
       required=True, key=True),
    _c("dtype", "text", "torch dtype of the inputs (float32, float64, …)", required=True, key=True),
    _c("device", "text", "torch device the case ran on (cpu, cuda:0)", required=True, key=True),
    _c("threads", "int", "torch intra-op threads, fixed for the timing", required=True, key=True),
    _c("seed", "int", "seed of the case's random inputs", required=True),
    _c("median_s", "float", "median seconds per call over the timed blocks", required=True),
    _c("iqr_s", "float", "interquartile range of the per-block seconds per call", required=True),
    _c("repeats", "int", "timed blocks", required=True),
    _c("err_max", "float", "‖T − Att‖_max against the float64 reference (inf when outputs are non-finite)",
       required=True),
    _c("err_max_rel", "float", "err_max / ‖V‖_max", required=True),
    _c("err_fro_rel", "float", "‖T − Att‖_F / ‖Att‖_F", required=True),
    _c("err_uniform", "float", "err_max of the trivial answer 'every row = mean of V' on the same case",
       required=True),
    _c("err_vs_uniform", "float", "err_max / err_uniform (< 1: better than ignoring attention)", required=True),
    _c("peak_bytes", "int", "peak memory of one call in bytes (see mem_method)", required=True),
    _c("status", "text", "ok | skipped | failed (one of STATUSES)", required=True),
    _c("reason", "text", "why a point was skipped or failed, or a warning on an ok point", required=True),
    # ---- extras
    _c("case_id", "text", "hash of the case's identity; --resume skips ids already present"),
    _c("bound_spec", "text", "the text B came from (\"1\", \"1.0*sqrt(log(n))\"): fits group by regime on it",
       key=True),
    _c("scale_spec", "text", "the text the scale came from (\"1/d\")", key=True),
    _c("params", "text", "JSON of the kernel parameters passed to the call", key=True),
    _c("radius", "float", "realised logit radius R = scale·max‖q‖₂·max‖k‖₂ of the inputs"),
    _c("value_bound", "float", "v ~ U[−value_bound, value_bound]"),
    _c("nonfinite", "int", "count of non-finite output values (they count as infinite error)"),
    _c("ref_rows", "int", "query rows on which the float64 reference was computed (n when all)"),
    _c("calls_per_block", "int", "calls averaged in each timed block (repeats blocks in all)"),
    _c("timer", "text", "blocked | adaptive (Timer autorange) | cpu (blocked, process CPU-time clock) | "
       "cuda_events (CUDA events, L2 flushed)"),
    _c("mem_method", "text", "how peak_bytes was measured: vmhwm | cuda_max_allocated | unavailable"),
    _c("predicted_flops", "float", "the cost model's FLOPs for one call (ditbench.theory)"),
    _c("predicted_bytes", "float", "the cost model's peak bytes for one call"),
    _c("wall_s", "float", "seconds spent on the whole point (inputs, reference, timing)"),
    _c("host", "text", "hostname of the machine that measured the point"),
    _c("workload", "text", "workload family: attention (synthetic q, k, v) | dit (end-to-end latent DiT, E5) | "
       "stats (score-network training, E7/E8)", key=True),
    _c("setting", "text", "JSON of the workload's own values, e.g. {\"blocks\": 2, \"model\": \"DiT-S/8\"}",
       key=True),
    _c("target_kernel", "text", "the kernel's non-softmax target (polysketch → poly4_exact), else empty", key=True),
    _c("err_target_max", "float", "‖T − target‖_max on the same rows as err_max"),
    _c("err_target_fro_rel", "float", "‖T − target‖_F / ‖target‖_F"),
    _c("err_target_uniform", "float", "‖mean of V − target‖_max: the trivial answer scored against the target"),
    _c("pass_index", "int", "which interleaved pass over the sweep measured this row (0-based; passes "
       "visit every point in a shuffled order)"),
    _c("samples", "text", "JSON list of seconds per call, one entry per timed block (the fit's block level)"),
    _c("warmup_s", "float", "seconds of the first (warm-up) call, which also measures memory and accuracy; "
       "empty on a later visit that timed its first call (docs/measure.md)"),
    _c("faults_per_call", "float", "minor page faults during timing per timed call (getrusage; includes the "
       "Timer's block-size estimate where it ran): memory the call had to map afresh"),
    _c("heap_policy", "text", "glibc malloc thresholds of the measuring process: fixed (the worker's, "
       "ditbench.measure.memory.fix_heap_policy) | adaptive (glibc's default)"),
    _c("drift_ref_s", "float", "seconds of one call of the drift reference (ditbench.measure.drift; name and "
       "version in meta.json), geometric mean of the calls right before and after the timed blocks"),
    _c("predicted_ref_flops", "float", "the cost model's FLOPs for the float64 reference of this point"),
    _c("ref_s", "float", "seconds spent computing the float64 reference (0 when reused from an earlier pass)"),
    _c("impl", "text", "implementation that ran where a kernel has several (polynomial: fused | torch)", key=True),
    # Written by measure so that fit and report read files only (no kernel registry, no theory):
    _c("exact", "bool", "the kernel computes the exact answer up to rounding (its registry entry)"),
    _c("threshold", "float", "entry bound √(ln n) past which no almost-linear algorithm exists under SETH "
       "(theory.entry_threshold at this n)"),
    _c("err_bound", "float", "a-priori bound on err_max in exact arithmetic, 2ε/(1+√(1−ε²))·‖V‖_max "
       "(theory.output_error_bound): with the realised ε of the kernel's polynomial where its describe hook "
       "states it, else the target 0 < eps < 1 of an approximate forward kernel; else empty"),
    # What ran (the kernel's describe hook on the inputs, ditbench.measure.workloads.realised):
    _c("poly_radius", "float", "logit radius the kernel's polynomial was built for (≥ radius; realised)"),
    _c("approx_error", "float", "realised relative error of the kernel's polynomial P ≈ exp on its radius"),
    _c("rounding_bound", "float", "float-rounding term of err_max in the row's dtype on the checked rows "
       "(ditbench.attention.polybounds, storage model)"),
    _c("warning", "text", "non-empty where rounding_bound exceeds err_bound: the ε-guarantee is not established "
       "in this dtype (float32: holds only in float64)"),
    _c("failure", "text", "why a row is not ok, one of FAILURES (empty for ok rows); the runner's policy reads it"),
    _c("machine", "text", "\"host · CPU model[ · GPU model]\" of the worker that ran the case (fits never pool "
       "machines)", key=True),
    _c("cpu_model", "text", "CPU model of that machine"),
    _c("gpu_model", "text", "GPU model of that machine (empty on CPU)"),
    _c("torch_version", "text", "torch version on that worker"),
    _c("worker", "text", "the worker that ran it: worker (local process), in-process, or a Dask worker address"),
    _c("rate_flops_per_s", "float", "the worker's calibrated FLOP rate used for the time-budget decision"),
    _c("rate_method", "text", "measured (median of the worker's calibration repeats) | assumed (given)"),
    _c("call_rate_flops_per_s", "float", "the rate that turns predicted_flops into predicted_s: rate_flops_per_s, "
       "or for the fused CPU polynomial kernel (no exp) its own calibrated rate"),
    _c("predicted_s", "float", "predicted seconds per call: predicted_flops / call_rate_flops_per_s"),
    _c("time_budget_s", "float", "the case's time budget: skipped (failure budget) when predicted_s exceeds it"),
    _c("predicted_point_s", "float", "predicted seconds of the whole point: predicted_ref_flops / rate_flops_per_s "
       "+ predicted_s·(2 + min_repeats) + min_run_time (reference, warm-up, block-size estimate, timing)"),
    _c("timeout_s", "float", "the case's wall-clock limit: skipped (failure budget) when predicted_point_s exceeds it"),
    _c("min_run_time", "float", "seconds of timed calls the Timer aims for at this point (shorter at small n)"),
    _c("min_repeats", "int", "least number of timed blocks"),
    _c("memory_need_bytes", "float", "predicted bytes of the call plus the measurement's own (inputs, reference)"),
    _c("memory_limit_bytes", "float", "memory_fraction × the worker's free memory: skipped when the need exceeds it"),
    *STATS,
)
RESULTS_BY_NAME: Mapping[str, Column] = {c.name: c for c in RESULTS}
COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULTS)  # results.csv header, in this order
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULTS if c.required)  # DESIGN §5
EXTRA_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULTS if not c.required)
STATUSES: tuple[str, ...] = ("ok", "skipped", "failed")
# The structured cause of a row that is not ok (its ``failure`` column); ``reason`` says it in words.
FAILURES: Mapping[str, str] = {
    "timeout": "failed: killed after the case's timeout_s",
    "crash": "failed: the process (or Dask worker) running the case died: signal, OOM killer, lost worker",
    "error": "failed: the kernel or workload raised an exception",
    "oom": "skipped: out of memory (torch.OutOfMemoryError)",
    "refused": "skipped: the kernel or family refused the case (ditbench.errors.KernelRefusal)",
    "unsupported": "skipped: outside the kernel's declared limits",
    "budget": "skipped: the cost model predicts more time or memory than the budget",
    "no-device": "skipped: the case's device does not exist on the worker's machine",
    "after-timeout": "skipped: a smaller n of the same setting timed out",
}
OPS: tuple[str, ...] = ("forward", "backward")
# The least a results file must hold to be read as ditbench results (the report's minimum).
MINIMAL_COLUMNS: tuple[str, ...] = ("kernel", "op", "n", "median_s", "status")

##################################################################################################
# Columns of timing tables that are not ditbench results (fit reads asv / pytest-benchmark too)
##################################################################################################
TIME_COLUMNS: tuple[str, ...] = ("seconds", "median_s")  # the first one present is a table's time
FOREIGN_NOT_KEYS: frozenset[str] = frozenset({
    "seconds", "mean_s", "min_s", "max_s", "stddev_s", "repeat", "rounds", "iterations",
    "date", "started_at", "duration_s",
})
# Columns that are never default fit group keys: sizes, times, measurements and bookkeeping.
NOT_KEYS: frozenset[str] = frozenset(c.name for c in RESULTS if not c.key) | FOREIGN_NOT_KEYS

##################################################################################################
# fits.csv — the group-key columns (results columns), then these
##################################################################################################
FITS: tuple[Column, ...] = (
    _c("exponent", "float", "fitted k in t = e^a·n^k"),
    _c("ci_low", "float", "lower end of the 95% confidence interval of k"),
    _c("ci_high", "float", "upper end of the 95% confidence interval of k"),
    _c("intercept", "float", "fitted a (log seconds at n = 1)"),
    _c("r2", "float", "coefficient of determination of the log-log fit"),
    _c("n_min", "float", "smallest n inside the fitted region"),
    _c("n_max", "float", "largest n inside the fitted region"),
    _c("points", "int", "measurements used by the fit"),
    _c("regime", "text", "verdict label (not-asymptotic, almost-linear, quadratic, …; DESIGN §4 Verdicts)"),
    _c("regime_reason", "text", "one line saying why the label was given (ditbench.fit.regime)"),
    _c("model", "text", "exponent model used: power | floor (t = c₀ + e^a·n^k) | step (one level step)"),
    _c("floor_s", "float", "fitted constant floor c₀ in seconds (model floor), else empty"),
    _c("step_n", "float", "first size above the level step (model step), else empty"),
    _c("step_factor", "float", "factor by which time jumps at the step (model step), else empty"),
    _c("drift_gamma", "float", "γ̂ of the drift covariate: ln t per unit ln(drift reference), within sizes "
       "(ditbench.fit.variance), else empty"),
    _c("best_model", "text", "the law the AICc comparison prefers (n·logᵖn p = 0..4, n², the exponent model)"),
    _c("sizes", "int", "distinct n in the group"),
    _c("dropped_sizes", "int", "sizes left out as not asymptotic"),
    _c("note", "text", "why a group has no fit, or a caution"),
)
FITS_BY_NAME: Mapping[str, Column] = {c.name: c for c in FITS}
FIT_COLUMNS: tuple[str, ...] = tuple(c.name for c in FITS)  # every column of fits.csv that is not a group key
FIT_VALUE_COLUMNS: tuple[str, ...] = FIT_COLUMNS[:FIT_COLUMNS.index("best_model") + 1]  # from the fit itself


##################################################################################################
# Writing and reading
##################################################################################################
def cell(value: Any) -> Any:
    """``value`` as written into a CSV cell (the module's NA rules)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")
    return value


def read_results(
    path: str | Path, *, require: Sequence[str] = MINIMAL_COLUMNS, complete: bool = True
) -> pd.DataFrame:
    """Read a results.csv (or any timing CSV) under the NA rules.

    Schema columns are typed by their dtype; with ``complete`` every schema column is present
    (absent ones all missing) and first, in schema order, with other columns after them; without
    it, the file's columns as they are. ValueError names the file and what is wrong: an
    unreadable file, a missing ``require``d column, a bad number, an unknown status or op, an
    ``ok`` row without a positive ``median_s``.
    """
    return read_results_with_absent(path, require=require, complete=complete)[0]


def read_results_with_absent(
    path: str | Path, *, require: Sequence[str] = MINIMAL_COLUMNS, complete: bool = True
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """:func:`read_results` and the DESIGN §5 required columns the file did not have (in order)."""
    path = Path(path)
    raw = _read_text_table(path)
    missing = [c for c in require if c not in raw.columns]
    if missing:
        raise ValueError(f"{path} lacks required column(s) {missing}; it has {list(raw.columns)}")
    absent = tuple(c for c in REQUIRED_COLUMNS if c not in raw.columns)
    frame = _typed(raw, RESULTS_BY_NAME, path, add=COLUMNS if complete else ())
    check_values(frame, path)
    return frame, absent


def read_fits(path: str | Path) -> pd.DataFrame:
    """Read a fits.csv under the NA rules (fit columns and result-column group keys typed)."""
    path = Path(path)
    return _typed(_read_text_table(path), {**RESULTS_BY_NAME, **FITS_BY_NAME}, path)


def check_values(frame: pd.DataFrame, source: str | Path = "results") -> None:
    """Refuse a status outside STATUSES, an op outside OPS, an ok row without a positive median_s."""
    for column, allowed in (("status", STATUSES), ("op", OPS)):
        if column in frame.columns:
            bad = sorted(set(frame[column].dropna()) - set(allowed))
            if bad:
                raise ValueError(f"{source}: {column} values {bad} are not among {list(allowed)}")
    if "status" in frame.columns and "median_s" in frame.columns:
        bad_time = (frame["status"] == "ok").fillna(False) & ~(frame["median_s"] > 0)
        if bad_time.any():
            first = frame[bad_time].iloc[0]
            raise ValueError(
                f"{source}: {int(bad_time.sum())} row(s) have status 'ok' but median_s not a positive number "
                f"(first: kernel={first.get('kernel')!r}, n={first.get('n')}, median_s={first['median_s']})"
            )


def _read_text_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:  # every cell as text: only an empty cell is missing
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path}: cannot read CSV ({str(err).strip().splitlines()[0]})") from err


def _typed(raw: pd.DataFrame, known: Mapping[str, Column], path: Path, add: Iterable[str] = ()) -> pd.DataFrame:
    """Columns converted by their schema dtype (unknown ones inferred); ``add`` columns created
    all-missing when absent; schema columns first, in ``add`` order."""
    import pandas as pd

    out: dict[str, pd.Series] = {}
    for name in add:
        if name not in raw.columns:
            out[name] = _typed_column(pd.Series([pd.NA] * len(raw), index=raw.index, dtype="string"),
                                      known[name].dtype, name, path)
    for name in raw.columns:
        column = known.get(name)
        out[name] = _typed_column(raw[name], column.dtype if column is not None else None, name, path)
    order = [c for c in add] + [c for c in raw.columns if c not in set(add)]
    return pd.DataFrame({c: out[c] for c in order}, index=raw.index)


def _typed_column(text: pd.Series, dtype: str | None, name: str, path: Path) -> pd.Series:
    import numpy as np
    import pandas as pd

    text = text.astype("string")
    if dtype == "text":
        return text
    if dtype == "bool":
        lower = text.str.strip().str.lower()
        bad = text.notna() & ~lower.isin(_TRUE + _FALSE)
        if bad.any():
            raise ValueError(f"{path}: column {name!r} must hold True or False; data row "
                             f"{int(np.flatnonzero(bad)[0]) + 1} has {text[bad].iloc[0]!r}")
        return lower.isin(_TRUE).astype("boolean").mask(text.isna())
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = text.notna() & numbers.isna() & ~text.str.strip().str.lower().isin(["nan", "+nan", "-nan"])
    if bad.any():
        if dtype is None:
            return text  # an unknown column of words: text
        raise ValueError(f"{path}: column {name!r} must hold numbers; data row {int(np.flatnonzero(bad)[0]) + 1} "
                         f"has {text[bad].iloc[0]!r}")
    if dtype == "float":
        return numbers
    if dtype is None:  # unknown: integers when every cell is written as one (as pandas infers)
        integral = len(text) > 0 and bool(text.str.fullmatch(r"\s*[+-]?\d+\s*").fillna(False).all())
    else:
        values = numbers.to_numpy()
        integral = len(values) > 0 and bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return numbers.astype("int64") if integral else numbers
