"""The machine a case runs on: who it is (hostname, CPU, GPU, torch) and what it can do (its own
calibrated rate and free memory), probed once by every worker process where it runs.

A :class:`Machine` is what the cost-model skips use on that worker (:func:`.point.run_case`) and
what every row it measures is stamped with (:meth:`Machine.row_fields`), so one results file
from several machines says, row by row, which machine measured what — and fits never pool them
(their default grouping includes ``machine``).
"""
from __future__ import annotations

import dataclasses
import math
import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .budget import Rates, available_memory, calibrate


@dataclass(frozen=True)
class Machine:
    """One worker's view of its machine, for one (device, threads) pair."""

    hostname: str
    cpu_model: str
    gpu_model: str  # "" when the device is not CUDA (or there is none)
    torch_version: str
    device: str  # "cpu" | "cuda"
    threads: int
    available: bool  # False: the device does not exist here (cases on it are skipped)
    rates: Rates | None  # None when the device is unavailable
    memory_bytes: float  # free memory the budget may use (inf: unknown)
    worker: str = ""  # the worker that probed it (dask address, "worker", "in-process")

    @property
    def label(self) -> str:
        """``host · CPU model`` (``· GPU model`` on CUDA): the ``machine`` column, a fit group key."""
        parts = [self.hostname, self.cpu_model] + ([self.gpu_model] if self.gpu_model else [])
        return " · ".join(parts)

    def row_fields(self) -> dict[str, Any]:
        """The machine columns of every row this worker measures."""
        return {"machine": self.label, "host": self.hostname, "cpu_model": self.cpu_model,
                "gpu_model": self.gpu_model, "torch_version": self.torch_version, "worker": self.worker}

    def to_dict(self) -> dict[str, Any]:
        """For meta.json: the identity plus the calibration (median rate, every repeat, spread)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "rates"}
        out["label"] = self.label
        out["memory_bytes"] = None if math.isinf(self.memory_bytes) else self.memory_bytes
        rates = self.rates
        out.update(rate_flops_per_s=None if rates is None else rates.flops_per_s,
                   rate_method=None if rates is None else rates.method,
                   rate_samples=[] if rates is None else list(rates.samples),
                   rate_spread=None if rates is None else rates.spread,
                   fused_rate_flops_per_s=None if rates is None else rates.fused_flops_per_s,
                   fused_rate_samples=[] if rates is None else list(rates.fused_samples))
        return out


@dataclass(frozen=True)
class Probe:
    """A request to describe and calibrate a worker's machine (the arguments of :func:`probe`)."""

    device: str
    threads: int
    rates: Rates | None = None
    memory_limit: float | None = None
    worker: str = ""


def probe(device: str, threads: int, *, rates: Rates | None = None, memory_limit: float | None = None,
          worker: str = "") -> Machine:
    """Describe and calibrate this process's machine for ``device`` with ``threads`` torch threads.

    Args:
        rates: use these rates instead of measuring (tests; a rate fixed for reproducibility).
        memory_limit: a cap on the usable memory below what the OS reports free (a Dask worker's
            ``memory_limit``: workers sharing one machine must not each budget all of it).
    """
    import torch

    available = device == "cpu" or (device == "cuda" and torch.cuda.is_available())
    memory = 0.0
    if available:
        torch.set_num_threads(threads)
        rates = rates or calibrate(device, threads)
        memory = available_memory(device)
        if memory_limit:
            memory = min(memory, float(memory_limit))
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and available else ""
    return Machine(hostname=socket.gethostname(), cpu_model=cpu_model(), gpu_model=gpu,
                   torch_version=str(torch.__version__), device=device, threads=threads, available=available,
                   rates=rates if available else None, memory_bytes=memory, worker=worker)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or f"unknown CPU ({os.cpu_count()} cores)"
