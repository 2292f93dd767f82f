"""Shared statistics for the randomised peer kernels (tested here on synthetic laws with known
answers) and the conventions every peer kernel must honour (shapes, dtypes, registry, refusals)."""
from __future__ import annotations

import inspect
import math
import re
from collections.abc import Sequence

import pytest
import torch

from ditbench.attention import KERNELS, Problem
from ditbench.attention.peers import NormaliserError
from ditbench.theory import Cost
from tolerances import assert_close, unit_roundoff

PEERS = ["performer", "hyperattention", "nystrom", "polysketch", "poly4_exact"]
# z for two-sided checks: P(|N(0,1)| > 4) ≈ 6e-5, so a correct kernel fails ~never over all checks.
Z = 4.0


##################################################################################
#                          Statistics used by the peer tests                      #
##################################################################################

def mean_ci(samples: torch.Tensor) -> tuple[float, float]:
    """(mean, standard error) of i.i.d. ``samples (S,)``: the CLT half-width is Z·SE."""
    s = samples.double()
    return float(s.mean()), float(s.std(unbiased=True) / math.sqrt(s.numel()))


def rms_slope(xs: Sequence[float], errors: Sequence[torch.Tensor]) -> tuple[float, float]:
    """Slope b and its standard error for log RMS_i = a + b·log x_i (weighted least squares).

    ``errors[i] (S,)``: independent error samples at ``xs[i]``; RMS_i = √mean(e²). By the delta
    method Var(log RMS_i) ≈ Var(e²)/(4·S·mean(e²)²), estimated from the same samples; the weights
    are the inverse variances, so SE(b) = 1/√Σ w_i (log x_i − x̄_w)².
    """
    x = torch.log(torch.tensor([float(v) for v in xs], dtype=torch.float64))
    sq = [e.double() ** 2 for e in errors]
    y = torch.stack([0.5 * torch.log(s.mean()) for s in sq])
    var = torch.stack([s.var(unbiased=True) / (4 * s.numel() * s.mean() ** 2) for s in sq])
    w = 1.0 / var
    xbar, ybar = (w * x).sum() / w.sum(), (w * y).sum() / w.sum()
    sxx = (w * (x - xbar) ** 2).sum()
    return float((w * (x - xbar) * (y - ybar)).sum() / sxx), float(1.0 / torch.sqrt(sxx))


def assert_slope(xs: Sequence[float], errors: Sequence[torch.Tensor], expected: float, max_se: float = 0.1) -> None:
    """The fitted slope lies within Z standard errors of ``expected``; SE ≤ max_se keeps the test
    able to tell −0.5 from 0 or −1 (a check that could never fail would be worthless)."""
    slope, se = rms_slope(xs, errors)
    assert se <= max_se, f"slope SE {se:.3f} too large to test anything (more seeds needed)"
    assert abs(slope - expected) <= Z * se, f"slope {slope:.3f} ± {se:.3f}, expected {expected}"


def test_rms_slope_recovers_known_law_and_calibrated_se():
    gen = torch.Generator().manual_seed(7)
    xs = [8, 16, 32, 64, 128, 256]
    hits, slopes = 0, []
    for _ in range(200):
        errs = [3.0 * x**-0.5 * torch.randn(100, generator=gen, dtype=torch.float64) for x in xs]
        slope, se = rms_slope(xs, errs)
        slopes.append(slope)
        hits += abs(slope + 0.5) <= 2 * se
    # 2·SE covers 95 %; with 200 replicates, 4 binomial SDs below that is 0.95 − 4·√(0.95·0.05/200) ≈ 0.89.
    assert hits / 200 >= 0.89
    assert abs(sum(slopes) / 200 + 0.5) < 0.01


def test_assert_slope_rejects_wrong_law():
    gen = torch.Generator().manual_seed(8)
    xs = [8, 16, 32, 64, 128, 256]
    errs = [x**-1.0 * torch.randn(200, generator=gen, dtype=torch.float64) for x in xs]
    assert_slope(xs, errs, expected=-1.0)
    with pytest.raises(AssertionError, match="slope"):
        assert_slope(xs, errs, expected=-0.5)


def test_mean_ci_covers_known_mean():
    gen = torch.Generator().manual_seed(9)
    mean, se = mean_ci(2.0 + torch.randn(10_000, generator=gen))
    assert abs(mean - 2.0) <= Z * se and se < 0.02


##################################################################################
#                          Conventions shared by every peer                      #
##################################################################################

def _inputs(n=33, m=47, d=6, dv=5, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = (torch.rand(2, 3, n, d, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)  # (2, 3, n, d)
    k = (torch.rand(1, 3, m, d, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)  # (1, 3, m, d)
    v = (torch.rand(3, m, dv, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)  # (3, m, dv)
    return q, k, v


# Small-input parameters that exercise each method's approximate path (not its exact fallback).
def own_rounding(name, q, k, v, dtype, **kw) -> float:
    """The kernel's own rounding error in ``dtype`` on these inputs, measured as a naive baseline:
    ‖K_float32(x) − K_float64(x)‖_max on x rounded to float32 (its random matrices rounded the
    same way), rescaled by u(dtype)/u(float32) for float64 (first-order rounding errors are linear in
    u). This includes what the kernel's own conditioning (Nyström's pseudo-inverse) does to them."""
    x32 = [t.float() for t in (q, k, v)]
    err32 = float((KERNELS[name](*x32, **kw).double() - KERNELS[name](*(t.double() for t in x32), **kw)).abs().max())
    return err32 * unit_roundoff(dtype) / unit_roundoff(torch.float32)


SMALL = {
    "performer": {"features": 16},
    "hyperattention": {"block_size": 8, "samples": 8, "min_seq_len": 0},
    "nystrom": {"landmarks": 8},
    "polysketch": {"sketch_size": 4},
    "poly4_exact": {},
}


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_broadcast_shapes_dtype_and_finite(name, dtype):
    q, k, v = _inputs(dtype=dtype)
    out = KERNELS[name](q, k, v, scale=0.4, **SMALL[name])
    assert out.shape == (2, 3, 33, 5) and out.dtype == dtype
    assert torch.isfinite(out).all()
    # Broadcasting must equal running each batch element separately.
    one = KERNELS[name](q[1, 2], k[0, 2], v[2], scale=0.4, **SMALL[name])
    if name != "hyperattention":  # its samples are drawn per batch element, so they differ by position
        # Batched and sliced runs differ only in summation order: each within 2× the kernel's own
        # rounding (the baseline rule), so they differ by ≤ 4× it.
        tol = 4 * own_rounding(name, q[1, 2], k[0, 2], v[2], dtype, scale=0.4, **SMALL[name])
        assert_close(out[1, 2], one, atol=tol, what=f"{name} broadcast vs sliced")


@pytest.mark.parametrize("name", PEERS)
def test_registry_params_match_signature_and_cost_is_sane(name):
    kernel = KERNELS[name]
    sig = inspect.signature(kernel.fn)
    assert {p for p in sig.parameters if p not in ("q", "k", "v", "scale")} == set(kernel.params)
    for key, default in kernel.params.items():
        assert sig.parameters[key].default == default
    problem = Problem(n=4096, m=4096, d=8, dv=8, bound=1.0, scale=1 / 8)
    assert kernel.unsupported_reasons(problem) == []
    cost = kernel.predicted_cost(problem)
    assert isinstance(cost, Cost) and 0 < cost.flops < math.inf and 0 < cost.bytes < math.inf
    assert kernel.unsupported_reasons(Problem(8, 8, 2, 2, dtype=torch.float16))  # float16 refused


@pytest.mark.parametrize("name", PEERS)
def test_rejects_float16_bad_scale_and_unknown_params(name):
    q, k, v = _inputs()
    with pytest.raises(ValueError, match="float16"):
        KERNELS[name](q.half(), k.half(), v.half())
    with pytest.raises(ValueError, match="scale"):
        KERNELS[name](q, k, v, scale=-1.0)
    with pytest.raises(ValueError, match="does not take"):
        KERNELS[name](q, k, v, degree=3)
    with pytest.raises(ValueError, match="non-finite"):
        KERNELS[name](q * math.inf, k, v)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("performer", {"features": 0}, r"features=0 must be ≥ 1"),
        ("performer", {"seed": -1}, r"seed=-1 must be ≥ 0"),
        ("performer", {"features": 2.5}, r"features=2.5 must be an integer"),
        ("hyperattention", {"block_size": 0}, r"block_size=0 must be ≥ 1"),
        ("hyperattention", {"samples": -1}, r"samples=-1 must be ≥ 0"),
        ("hyperattention", {"lsh_num_projs": 25}, r"lsh_num_projs=25 must be ≤ 24"),
        ("nystrom", {"landmarks": 34}, r"landmarks=34 must be ≤ 33 \(at most min\(n=33, m=47\)"),
        ("nystrom", {"pinv_iterations": 0}, r"pinv_iterations=0 must be ≥ 1"),
        ("polysketch", {"sketch_size": 0}, r"sketch_size=0 must be ≥ 1"),
    ],
)
def test_bad_parameters_name_value_and_limit(name, params, match):
    q, k, v = _inputs()
    with pytest.raises(ValueError, match=match):
        KERNELS[name](q, k, v, **params)
    # The registry reports the same refusal before anything runs.
    reasons = KERNELS[name].unsupported_reasons(Problem(n=33, m=47, d=6, dv=5), params)
    assert any(re.search(match, reason) for reason in reasons), reasons


def test_normaliser_error_is_a_floating_point_error():
    assert issubclass(NormaliserError, FloatingPointError)


# Non-matmul terms of each documented cost formula (exps, powers, sorting, normalising): the rest
# of the formula must equal the matmul FLOPs torch's FlopCounterMode counts in the real code.
_ELEMENTWISE = {
    "performer": lambda n, m, d, dv, p: (n + m) * p["features"],
    "hyperattention": lambda n, m, d, dv, p: (
        (n + m) * math.log2(n + m) + _hyper_logits(n, m, p)
    ),
    "nystrom": lambda n, m, d, dv, p: (n + m) * d + n * p["landmarks"] + p["landmarks"] ** 2 + p["landmarks"] * m,
    "polysketch": lambda n, m, d, dv, p: 3 * (n + m) * d + (n + m) * p["sketch_size"] * (1 + p["sketch_size"]),
    "poly4_exact": lambda n, m, d, dv, p: 3 * (n + m) * d + 3 * n * m,
}


def _hyper_logits(n: int, m: int, p: dict) -> int:
    """Logits HyperAttention exponentiates: padded diagonal blocks plus the sampled columns."""
    kb = min(p["block_size"], m)
    nb = math.ceil(m / kb)
    return nb * math.ceil(n / nb) * kb + n * min(p["samples"], m)


@pytest.mark.parametrize("name", PEERS)
def test_cost_formula_matmul_part_matches_flop_counter(name):
    from torch.utils.flop_counter import FlopCounterMode

    n, m, d, dv = 256, 320, 8, 4
    params = {**KERNELS[name].params, **SMALL[name]}
    gen = torch.Generator().manual_seed(0)
    q, k, v = torch.rand(n, d, generator=gen), torch.rand(m, d, generator=gen), torch.rand(m, dv, generator=gen)
    with FlopCounterMode(display=False) as counter:
        KERNELS[name](q, k, v, **SMALL[name])
    predicted = KERNELS[name].predicted_cost(Problem(n, m, d, dv), params).flops
    assert counter.get_total_flops() + _ELEMENTWISE[name](n, m, d, dv, params) == pytest.approx(predicted, rel=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", PEERS)
def test_cuda_matches_cpu_with_the_same_seed(name):
    # Random matrices and samples are drawn on the CPU in float64 and moved, so the device changes
    # only the summation order: each side within 2× the kernel's own float64 rounding (the baseline
    # rule; it includes κ(A) for Nyström's pseudo-inverse), so they differ by ≤ 4× it.
    q, k, v = _inputs()
    cpu = KERNELS[name](q, k, v, scale=0.4, **SMALL[name])
    gpu = KERNELS[name](q.cuda(), k.cuda(), v.cuda(), scale=0.4, **SMALL[name])
    assert gpu.device.type == "cuda"
    tol = 4 * own_rounding(name, q, k, v, torch.float64, scale=0.4, **SMALL[name])
    assert_close(gpu.cpu(), cpu, atol=tol, what=f"{name} cuda vs cpu")
