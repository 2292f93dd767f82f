"""The results store: results.csv (one row per case, appended and flushed as each point ends) and
meta.json (how and where the run happened). Schema as DESIGN §5, plus documented extras.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

# DESIGN §5, in this order.
REQUIRED_COLUMNS = (
    "experiment", "kernel", "op", "n", "m", "d", "dv", "bound", "scale", "eps", "degree", "rank", "dtype", "device",
    "threads", "seed", "median_s", "iqr_s", "repeats", "err_max", "err_max_rel", "err_fro_rel", "err_uniform",
    "err_vs_uniform", "peak_bytes", "status", "reason",
)
EXTRA_COLUMNS = (
    "case_id",  # hash of the case's identity; --resume skips ids already present
    "bound_spec",  # the text B came from ("1", "1.0*sqrt(log(n))"): fits group by regime on it
    "scale_spec",  # the text the scale came from ("1/d")
    "params",  # JSON of the kernel parameters passed to the call
    "radius",  # realised logit radius R = scale·max‖q‖₂·max‖k‖₂ of the inputs
    "value_bound",  # v ~ U[−value_bound, value_bound]
    "nonfinite",  # count of non-finite output values (they count as infinite error)
    "ref_rows",  # query rows on which the float64 reference was computed (n when all)
    "calls_per_block",  # calls averaged in each timed block (repeats blocks in all)
    "timer",  # "blocked" | "adaptive" (torch.utils.benchmark.Timer autorange)
    "mem_method",  # how peak_bytes was measured: vmhwm | cuda_max_allocated | unavailable
    "predicted_flops", "predicted_bytes",  # the kernel's cost model for one call
    "wall_s",  # seconds spent on the whole point (inputs, reference, timing)
    "host",
    "workload",  # "attention" (synthetic q, k, v) | "dit" (end-to-end latent DiT, E5) | "stats" (E7/E8)
    "setting",  # JSON of the workload's own values, e.g. {"batch": 1, "blocks": 2, "model": "DiT-S/8"}
    "target_kernel",  # the kernel's non-softmax target (polysketch → poly4_exact), else empty
    "err_target_max",  # ‖T − target‖_max on the same rows as err_max
    "err_target_fro_rel",  # ‖T − target‖_F / ‖target‖_F
    "err_target_uniform",  # ‖mean of V − target‖_max: the trivial answer scored against the target
)
# The stats family's own columns (E7/E8, ditbench.stats; empty on every other row). Score errors are
# root-mean σ_t-weighted: √E_t E_x[σ_t‖P(s − ∇log p_t)‖²], t ~ U[0.01, 5] (docs/stats.md).
STATS_COLUMNS = (
    "network",  # "latent" (W_B f(W_Bᵀx, t)/σ − x/σ) | "ambient" (matched-size baseline without W_B)
    "samples",  # n: training-set size
    "ambient_dim", "latent_dim",  # D and d0
    "param_count",  # trainable parameters of the network
    "train_s", "train_loss", "train_steps",  # DSM wall seconds, mean loss over the last 10 % of steps, steps
    "score_err", "score_err_on", "score_err_off",  # P = I, BBᵀ, I − BBᵀ
    "score_ref",  # √E[σ_t‖∇log p_t‖²]: the target's size, for relative errors
    "subspace_err",  # ‖W_B W_Bᵀ − BBᵀ‖_F (latent network only)
    "sample_mmd",  # Gaussian-kernel MMD (V-statistic, median-heuristic bandwidth): reverse-SDE samples vs data
    "sample_mmd_exact",  # the same with the analytic score driving the same SDE (discretisation floor)
    "sample_mmd_floor",  # two fresh data samples of the same size (the estimator's floor)
    "projection",  # JSON {"model": [[u, v], …], "data": …}: samples in B's first two latent coordinates
)
COLUMNS = REQUIRED_COLUMNS + EXTRA_COLUMNS + STATS_COLUMNS
STATUSES = ("ok", "skipped", "failed")


class ResultStore:
    """Append-only results.csv. Each row is written and flushed (and fsynced) when its point ends,
    so an interrupted run loses at most the point in flight."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._repair()

    def _repair(self) -> None:
        """Drop a half-written last line (a run killed mid-write) so the file stays valid CSV."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])
        with self.path.open(newline="") as fh:
            header = next(csv.reader(fh), None)
        if header is not None and tuple(header) != COLUMNS:
            raise ValueError(f"{self.path} has columns {header[:5]}… that differ from this version's schema; "
                             f"write to a new --out directory")

    def recorded_ids(self) -> set[str]:
        """case_id of every row already in the file (any status)."""
        if not self.path.exists():
            return set()
        with self.path.open(newline="") as fh:
            return {row["case_id"] for row in csv.DictReader(fh)}

    def append(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"row has columns {sorted(unknown)} that are not in the results schema")
        if row.get("status") not in STATUSES:
            raise ValueError(f"row status {row.get('status')!r} must be one of {list(STATUSES)}")
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({key: _cell(row.get(key)) for key in COLUMNS})
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame(columns=list(COLUMNS))
        return read_results(self.path)


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a results.csv; empty cells become NaN in numeric columns (pandas' missing value)."""
    text = ("reason", "bound_spec", "scale_spec", "params", "case_id", "experiment", "kernel", "workload", "setting",
            "target_kernel", "network", "projection")
    df = pd.read_csv(path, keep_default_na=False, na_values=["", "nan"], dtype={c: str for c in text})
    for column in text:
        if column in df.columns:  # files of earlier versions may lack the newer text columns
            df[column] = df[column].fillna("")
    return df


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")
    return value


##################################################################################################
# meta.json
##################################################################################################
def run_metadata(
    *, preset: Mapping[str, Any], threads: int, device: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Versions, machine and run settings (DESIGN §5), without the end time."""
    import numpy
    import torch

    return {
        "preset": dict(preset),
        "start_time": utc_now(), "end_time": None,
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__,
        "pandas": pd.__version__, "platform": platform.platform(),
        "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
        "gpu_model": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda, "threads": threads, "device": device,
        "git_commit": _git_commit(),
        "command": sys.argv,
        **dict(extra or {}),
    }


def write_meta(path: str | Path, meta: Mapping[str, Any]) -> None:
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file


def read_meta(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    """HEAD of the repository holding this package (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
