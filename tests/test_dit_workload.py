"""E5 workload: builds, runs forward/backward, and measures its error against exact attention."""
from __future__ import annotations

import pytest
import torch

from ditbench.dit import DiTConfig, get_config
from ditbench.dit.workload import WorkloadSpec, build_workload
from test_dit_reference import one_thread  # noqa: F401  (autouse fixture)
from tolerances import assert_close, gamma


def chain_length(cfg: DiTConfig, tokens: int, blocks: int, op: str) -> int:
    """Total inner-product length along the longest chain of products from the latents to one output
    of a DiT with ``blocks`` blocks: embeddings (patch p²·C, timestep 256 + C), per block the adaLN
    linear (C), qkv (C), QKᵀ (d), the softmax sum and PV (L each), proj (C), fc1 (C), fc2 (mlp·C),
    the final adaLN and linear (C each). The backward pass runs the transposed chain: the same
    products again with their output widths (6C, 3C, L, L, d, C, mlp·C, C; final 2C and p²·C_out)."""
    c, d, mlp = cfg.hidden_size, cfg.head_dim, int(cfg.mlp_ratio * cfg.hidden_size)
    p2 = cfg.patch_size**2
    forward = p2 * cfg.in_channels + 256 + c + blocks * (c + c + d + 2 * tokens + c + c + mlp) + 2 * c
    backward = blocks * (6 * c + 3 * c + 2 * tokens + d + c + mlp + c) + 2 * c + p2 * cfg.out_channels
    return forward + (backward if op == "backward" else 0)


def float32_network_bound(spec: WorkloadSpec) -> float:
    """err_max_rel bound of a float32 DiT against its float64 twin: relative errors along a chain of
    products add (Higham Lemma 3.3: γ of the total length); scaled by ‖ref‖_max because LayerNorm
    renormalises every block's input (the assumption of test_dit_reference.forward_tolerance)."""
    cfg = get_config(spec.model)
    return gamma(chain_length(cfg, spec.tokens, spec.blocks or cfg.depth, spec.op), torch.float32)
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
    bound = float32_network_bound(WorkloadSpec(kernel="exact", op=op, **SMALL))
    for kernel in ("sdpa", "exact"):
        assert_close(errs[kernel]["err_max_rel"], 0.0, atol=bound, what=f"{kernel} float32 network vs float64")
        assert errs[kernel]["err_vs_uniform"] < 1e-2
    # The tight check, by the naive same-precision baseline rule: SDPA's network errs by ≤ 2× the one
    # with the streamed two-pass softmax (`exact`) in the same float32 network.
    assert_close(errs["sdpa"]["err_max"], 0.0, atol=2 * errs["exact"]["err_max"], what="sdpa vs 2× exact baseline")
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
        spec = WorkloadSpec(device="cuda", **SMALL)
        w = build_workload(spec)
        assert w.fn().device.type == "cuda"
        assert_close(w.error()["err_max_rel"], 0.0, atol=float32_network_bound(spec), what="cuda")  # as on CPU
        rows = check_dit(w.model, w.inputs.x, w.inputs.t, w.inputs.y)
    assert len(rows) == 2 * 6 and all(r.L == 16 for r in rows)
