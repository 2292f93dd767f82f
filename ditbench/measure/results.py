"""The results store: results.csv (one row per case, appended and flushed as each point ends) and
meta.json (how and where the run happened). The columns, their dtypes and NA rules, and the
reader live in :mod:`ditbench.schema` (re-exported here for measure's callers).
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..schema import COLUMNS, FAILURES, REQUIRED_COLUMNS, STATUSES, cell, read_results

__all__ = ["COLUMNS", "FAILURES", "REQUIRED_COLUMNS", "ResultStore", "read_meta", "read_results", "run_metadata",
           "write_meta"]


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
        if row.get("failure") and row["failure"] not in FAILURES:
            raise ValueError(f"row failure {row['failure']!r} must be one of {list(FAILURES)}")
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({key: cell(row.get(key)) for key in COLUMNS})
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame(columns=list(COLUMNS))
        return read_results(self.path, require=COLUMNS)


##################################################################################################
# meta.json
##################################################################################################
def run_metadata(
    *, preset: Mapping[str, Any], threads: int, device: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Versions, machine and run settings (DESIGN §5), without the end time."""
    import numpy
    import torch

    from .machine import cpu_model

    return {
        "preset": dict(preset),
        "start_time": utc_now(), "end_time": None,
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__,
        "pandas": pd.__version__, "platform": platform.platform(),
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
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
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    """HEAD of the repository holding this package (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
