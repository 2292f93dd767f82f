"""E5 workload: builds, runs forward/backward, and measures its error against exact attention."""
from __future__ import annotations

import pytest
import torch

from ditbench.dit.workload import WorkloadSpec, build_workload
from test_dit_reference import one_thread  # noqa: F401  (autouse fixture)
from tolerances import assert_close

F32_EPS = torch.finfo(torch.float32).eps
SMALL = dict(model="DiT-S/4", image_size=128, blocks=2)  # L = 16 tokens, d = 64, 2 blocks


@pytest.mark.slow
@pytest.mark.parametrize("op", ["forward", "backward"])
def test_exact_kernels_match_float64_reference_and_beat_uniform(op):
    errs = {}
    for kernel in ("sdpa", "exact", "uniform"):
        w = build_workload(WorkloadSpec(kernel=kernel, op=op, **SMALL))
        out = w.fn()
        assert out.shape == ((1, 8, 16, 16) if op == "forward" else (1, 4, 16, 16))
        errs[kernel] = w.error()
        assert errs[kernel]["nonfinite"] == 0
    for kernel in ("sdpa", "exact"):
        # A float32 network of ≲ 10 chained products of length ≤ 1536: relative error ≤ 1536·eps32
        # per product (Higham γ_n); the measured error must sit below that bound.
        assert errs[kernel]["err_max_rel"] <= 10 * 1536 * F32_EPS
        assert errs[kernel]["err_vs_uniform"] < 1e-2
    # The uniform kernel's run *is* the uniform baseline's computation, repeated on a deep copy: BLAS
    # may round the two differently (MKL sums depend on alignment), by no more than a float32 rounding
    # difference of this network, which the exact kernels' measured float32 error bounds (×4).
    rounding = 4 * max(errs["sdpa"]["err_max"], errs["exact"]["err_max"])
    assert_close(errs["uniform"]["err_max"], errs["uniform"]["err_uniform"], atol=rounding, what="uniform vs baseline")
    assert errs["uniform"]["err_max_rel"] > 1e-3  # perturbed adaLN: attention visibly matters


def test_same_dtype_reference_isolates_the_kernel():
    w = build_workload(WorkloadSpec(kernel="exact", **SMALL))
    assert w.error("same_dtype")["err_max"] == 0.0  # identical model and kernel: bit-identical
    with pytest.raises(ValueError, match="reference"):
        w.error("float16")


def test_blocks_and_tokens():
    spec = WorkloadSpec(model="DiT-XL/2", image_size=2048)
    assert spec.tokens == 16384 and spec.attention_problem().d == 72
    w = build_workload(WorkloadSpec(**SMALL))
    assert w.layers == 2
    with pytest.raises(ValueError, match="exceeds DiT-S/4's depth 12"):
        build_workload(WorkloadSpec(model="DiT-S/4", image_size=128, blocks=13))


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="op="):
        build_workload(WorkloadSpec(op="sideways", **SMALL))
    with pytest.raises(ValueError, match="unknown kernel"):
        build_workload(WorkloadSpec(kernel="nope", **SMALL))
    with pytest.raises(ValueError, match="does not take"):
        build_workload(WorkloadSpec(kernel="sdpa", params={"eps": 0.1}, **SMALL))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_workload_and_criteria_on_cuda():
    from ditbench.dit import check_dit

    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # keep float32 rounding for the bound
        w = build_workload(WorkloadSpec(device="cuda", **SMALL))
        assert w.fn().device.type == "cuda"
        assert w.error()["err_max_rel"] <= 10 * 1536 * F32_EPS  # same bound as on CPU
        rows = check_dit(w.model, w.inputs.x, w.inputs.t, w.inputs.y)
    assert len(rows) == 2 * 6 and all(r.L == 16 for r in rows)
