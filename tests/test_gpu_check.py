"""benchmarks/gpu_check.py, the one prepared GPU script, exercised here without a GPU: its
no-GPU exit, and every code path (checks, budgeted timing grid, JSON) as a CPU dry run with
polynomial_triton under Triton's interpreter (TRITON_INTERPRET=1, so in a subprocess)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check_probe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the no-GPU path cannot be taken")
def test_without_a_gpu_it_says_so_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert _load().main(["--json", str(out)]) == 0
    assert "no CUDA device here" in capsys.readouterr().out and not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_cpu_dry_run_exercises_checks_timing_budget_and_json(tmp_path):
    out = tmp_path / "g.json"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": path}
    # A tiny point cap: the larger size must be skipped by the budget rule, with its reason.
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--sizes", "64", "256", "--dims", "4",
                           "--check-n", "48", "--min-run-time", "0.01", "--point-cap-s", "1e-6", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["card"].startswith("cpu") and result["device"] == "cpu"
    checks = {c["kernel"]: c for c in result["checks"]}
    assert checks["polynomial_triton"]["status"] == "pass", checks["polynomial_triton"]
    assert checks["polynomial"]["status"] == "pass" and checks["exact"]["status"] == "pass"
    assert "cuda" in checks["sdpa_flash"]["reason"]  # refused on CPU by the registry, with the reason
    assert any(c["op"] == "backward" and c["status"] == "pass" for c in checks.values())
    rows = {(r["kernel"], r["n"]): r for r in result["timings"]}
    for name in ("polynomial_triton", "polynomial", "sdpa"):
        first = rows[name, 64]
        assert first["status"] == "ok" and first["median_s"] > 0 and first["repeats"] >= 3, first
        assert first["err_max"] < 1e-2 and len(first["samples"]) == first["repeats"]
        assert rows[name, 256]["status"] == "skipped" and "per-point cap" in rows[name, 256]["reason"]
    assert rows["sdpa_flash", 64]["status"] == "skipped"
