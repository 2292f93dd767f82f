from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, strategies as st

from ditbench.attention import KERNELS, exact_attention, sdpa_attention, uniform_attention
from conftest import reference_attention
from tolerances import assert_close, gamma, max_abs, softmax_attention_bound

EXACT_KERNELS = [exact_attention, sdpa_attention]
# Online-softmax rescalings a kernel may do per row: the two-pass exact kernel none; torch's flash
# kernel one per key block, whose size is internal, so bound it by one per key.
RESCALES = {exact_attention: lambda m: 0, sdpa_attention: lambda m: m}


def _bound(fn, q, k, v, scale):
    """Kernel's worst-case rounding error plus the float64 reference's own."""
    return (softmax_attention_bound(q, k, v, scale, rescales=RESCALES[fn](k.shape[-2]))
            + softmax_attention_bound(q, k, v, scale, torch.float64))
F32_EPS = torch.finfo(torch.float32).eps


def _inputs(gen, shape_q, shape_k, dv, bound, dtype=torch.float64):
    q = (torch.rand(*shape_q, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    k = (torch.rand(*shape_k, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    v = torch.rand(*shape_k[:-1], dv, generator=gen, dtype=torch.float64) * 2 - 1
    return q.to(dtype), k.to(dtype), v.to(dtype)


@pytest.mark.parametrize("fn", EXACT_KERNELS)
def test_matches_float64_reference_with_broadcast_batch(fn, gen):
    q, k, v = _inputs(gen, (2, 3, 37, 8), (1, 3, 53, 8), 5, bound=2.0)
    out = fn(q, k, v, scale=0.3)
    ref = reference_attention(q, k, v, 0.3)
    assert out.shape == (2, 3, 37, 5)
    assert_close(out, ref, atol=_bound(fn, q, k, v, 0.3), what=fn.__name__)


def test_exact_streaming_block_size_does_not_change_result(gen):
    q, k, v = _inputs(gen, (101, 4), (77, 4), 3, bound=3.0)
    full = exact_attention(q, k, v, block_size=101)
    # Each row is the same arithmetic whatever the block, but BLAS may sum a (1, m) and a (101, m)
    # product in different orders: two evaluations each within the worst-case bound.
    tol = 2 * softmax_attention_bound(q, k, v, 1 / 2)  # scale None → 1/√d = 1/2
    for block in (1, 7, 50):
        assert_close(exact_attention(q, k, v, block_size=block), full, atol=tol, what=f"block_size={block}")


@pytest.mark.parametrize("fn", EXACT_KERNELS)
def test_stable_at_huge_logits(fn):
    # Logits of ±1e4: a naive exp overflows; the answer is a hard argmax.
    q = torch.tensor([[100.0, 0.0], [-100.0, 0.0]])
    k = torch.tensor([[100.0, 0.0], [99.0, 0.0], [-100.0, 0.0]])
    v = torch.tensor([[1.0], [2.0], [3.0]])
    out = fn(q, k, v, scale=1.0)
    assert torch.isfinite(out).all()
    # The argmax key outweighs the others by e^{100} at least (logit gaps 100 and 2·10^4, float32
    # logits of 10^4 err by u·10^4 ≈ 6e-4 only): the true answer is within 2·2e^{-100}·‖V‖ of the
    # hard argmax, the float32 sums add γ_3 relative.
    tol = (4 * math.exp(-100) + gamma(4, torch.float32)) * max_abs(v)
    assert_close(out, torch.tensor([[1.0], [3.0]]), atol=tol, what=fn.__name__)


def test_uniform_is_mean_of_v(gen):
    q, k, v = _inputs(gen, (4, 10, 3), (4, 6, 3), 2, bound=1.0)
    out = uniform_attention(q, k, v)
    mean_tol = gamma(6 + 1) * max_abs(v)  # a sum of 6 terms and a division, in any order
    assert_close(out, v.mean(-2, keepdim=True).expand(4, 10, 2), atol=2 * mean_tol)
    # Uniform equals exact attention when every logit is equal (scale → tiny: exp(±1e-300) = 1).
    assert_close(exact_attention(q, k, v, scale=1e-300), out, atol=mean_tol + gamma(6 + 1) * max_abs(v))


@given(
    n=st.integers(1, 40), m=st.integers(1, 40), d=st.integers(1, 9), dv=st.integers(1, 6),
    bound=st.floats(0.1, 4.0), scale=st.floats(0.05, 2.0), seed=st.integers(0, 2**31 - 1),
)
def test_property_exact_kernels_agree_with_reference(n, m, d, dv, bound, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = _inputs(gen, (n, d), (m, d), dv, bound)
    ref = reference_attention(q, k, v, scale)
    for fn in EXACT_KERNELS:
        assert_close(fn(q, k, v, scale=scale), ref, atol=_bound(fn, q, k, v, scale), what=fn.__name__)


def test_float32_within_rounding_of_float64(gen):
    q, k, v = _inputs(gen, (200, 8), (300, 8), 8, bound=1.0)
    ref = reference_attention(q, k, v, 1 / 8)
    for fn in EXACT_KERNELS:
        out = fn(q.float(), k.float(), v.float(), scale=1 / 8)
        assert out.dtype == torch.float32
        # Naive float32 baseline (materialised softmax) sets the tolerance: at most 4× its error.
        naive = torch.softmax((q.float() @ k.float().T) / 8, -1) @ v.float()
        base = (naive.double() - ref).abs().max().item()
        assert_close(out, ref, atol=4 * max(base, F32_EPS), what=f"{fn.__name__} float32 vs 4× naive")


@pytest.mark.parametrize("name", ["exact", "sdpa", "uniform"])
@pytest.mark.parametrize(
    "args, match",
    [
        (lambda: (torch.randn(4, 3), torch.randn(5, 2), torch.randn(5, 2)), "feature dim"),
        (lambda: (torch.randn(4, 3), torch.randn(5, 3), torch.randn(6, 2)), "key count"),
        (lambda: (torch.tensor([[float("nan"), 0.0]]), torch.randn(5, 2), torch.randn(5, 2)), "non-finite"),
        (lambda: (torch.randn(4, 2), torch.randn(5, 2).double(), torch.randn(5, 2)), "dtype"),
        (lambda: (torch.randn(3, 4, 2), torch.randn(2, 5, 2), torch.randn(2, 5, 2)), "broadcast"),
        (lambda: (torch.randn(4), torch.randn(5, 4), torch.randn(5, 2)), "at least 2 dims"),
    ],
)
def test_bad_input_raises_clear_error(name, args, match):
    with pytest.raises(ValueError, match=match):
        KERNELS[name](*args())


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        exact_attention(torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2), scale=scale)


def test_registry_refuses_unknown_params_and_reports_support():
    with pytest.raises(ValueError, match="does not take"):
        KERNELS["sdpa"](torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2), eps=0.1)
    from ditbench.attention import Problem
    reasons = KERNELS["exact"].unsupported_reasons(Problem(8, 8, 2, 2, dtype=torch.float16))
    assert reasons and "float16" in reasons[0]


@pytest.mark.slow
def test_exact_streams_at_64k_without_n_by_m_matrix():
    # n = m = 65536, d = 8: a full n×m float32 matrix would be 16 GiB; the streamed kernel
    # holds one (block, m) tile. Run one block-row slice of queries to keep the test fast,
    # and check the peak allocation of the full-key pass stays at tile size.
    import tracemalloc  # noqa: F401  (torch CPU allocations are not tracked by tracemalloc)
    gen = torch.Generator().manual_seed(0)
    n = m = 65536
    k = torch.rand(m, 8, generator=gen) * 2 - 1
    v = torch.rand(m, 8, generator=gen) * 2 - 1
    q = torch.rand(128, 8, generator=gen) * 2 - 1
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        out = exact_attention(q, k, v, scale=1 / 8)
    peak = max((e.cpu_memory_usage for e in prof.key_averages()), default=0)
    assert out.shape == (128, 8)
    assert peak < n * m * 4 // 64  # far below an n×m matrix
