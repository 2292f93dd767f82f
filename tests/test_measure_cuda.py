"""CUDA end to end (skipped cleanly without a GPU): synchronised timing, CUDA memory stats."""
from __future__ import annotations

import pytest
import torch

from ditbench.measure import InProcessExecutor, get_preset, run_sweep
from ditbench.measure.memory import measure_peak
from tolerances import assert_close, softmax_rounding_bound

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_smoke_preset_on_cuda(tmp_path):
    frame = run_sweep(get_preset("smoke"), tmp_path, threads=1, device="cuda", executor=InProcessExecutor(),
                      progress=False)
    assert (frame["status"] == "ok").all(), frame[["kernel", "n", "reason"]]
    assert (frame["device"] == "cuda").all() and (frame["mem_method"] == "cuda_max_allocated").all()
    exact = frame[frame["kernel"].isin(["exact", "sdpa"])]
    # Worst-case float32 softmax rounding (one rescaling per key at worst) plus the float64 reference's.
    for r in exact.itertuples():
        v_max, reach = r.err_max / r.err_max_rel, r.scale * r.d * r.bound**2
        tol = (softmax_rounding_bound(r.m, r.d, reach, v_max, torch.float32, rescales=r.m)
               + softmax_rounding_bound(r.m, r.d, reach, v_max, torch.float64))
        assert_close(r.err_max, 0.0, atol=tol, what=f"{r.kernel} n={r.n} on cuda")


def test_cuda_peak_memory_sees_a_known_allocation():
    size = 64 * 2**20
    out, peak, method = measure_peak(lambda: torch.empty(size, dtype=torch.uint8, device="cuda"), "cuda")
    assert method == "cuda_max_allocated" and peak == size  # the caching allocator rounds to 2 MiB: exact here
