"""CUDA end to end (skipped cleanly without a GPU): synchronised timing, CUDA memory stats."""
from __future__ import annotations

import pytest
import torch

from ditbench.measure import InProcessExecutor, get_preset, run_sweep
from ditbench.measure.memory import measure_peak

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
F32_EPS = torch.finfo(torch.float32).eps


def test_smoke_preset_on_cuda(tmp_path):
    frame = run_sweep(get_preset("smoke"), tmp_path, threads=1, device="cuda", executor=InProcessExecutor(),
                      progress=False)
    assert (frame["status"] == "ok").all(), frame[["kernel", "n", "reason"]]
    assert (frame["device"] == "cuda").all() and (frame["mem_method"] == "cuda_max_allocated").all()
    exact = frame[frame["kernel"].isin(["exact", "sdpa"])]
    # float32 softmax averages of |v| ≤ 1 over m terms: worst-case summation bound m·eps32.
    assert (exact["err_max"] <= exact["m"] * F32_EPS).all()


def test_cuda_peak_memory_sees_a_known_allocation():
    size = 64 * 2**20
    out, peak, method = measure_peak(lambda: torch.empty(size, dtype=torch.uint8, device="cuda"), "cuda")
    assert method == "cuda_max_allocated" and peak == size  # the caching allocator rounds to 2 MiB: exact here
