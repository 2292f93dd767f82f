"""Fuzzing the API as a hostile or careless user would (hypothesis): every registered forward and
backward kernel and every theory function, on adversarial values (entries near the dtype's
largest number, NaN/inf, zeros, huge or invalid parameters and scales).

Each call must end in a clear error or a result (tests/fuzzing.py). Results are checked:
* finite and of the right shape, for every kernel (zero silent NaN/inf);
* exact kernels (exact, sdpa) against a float64 reference within the derived worst-case rounding
  bound (tests/tolerances.softmax_attention_bound); uniform against the float64 mean;
* polynomial in float64 within its proven bound 2ε/(1+√(1−ε²))·‖V‖_max plus the rounding bound
  (ditbench.theory.output_error_bound, rounding_error_bound);
* kernels whose weights are non-negative (performer, hyperattention, poly4_exact, and every exact
  one) inside the convex hull: ‖T‖_max ≤ (1 + 2γ)·‖V‖_max.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ditbench import theory
from ditbench._checks import Param
from ditbench.attention import KERNELS
from ditbench.attention.polynomial import choose_approx
from ditbench.expapprox import GRID_SLACK
from ditbench.gradient.exact import attention_loss

import fake_kernels
from conftest import reference_attention
from fuzzing import attempt, record
from tolerances import gamma, softmax_attention_bound, unit_roundoff

# The registered kernels, without the runner tests' deliberately broken fakes (tests/fake_kernels.py,
# registered in this process as soon as any test module imports it: whether that happened before this
# module was collected depends on which files run, so they are left out by name, not by luck).
FAKE_NAMES = {k.name for k in fake_kernels.FAKES}
SHIPPED = {name: k for name, k in KERNELS.items() if name not in FAKE_NAMES}
FORWARD = sorted(name for name, k in SHIPPED.items() if k.op == "forward")
BACKWARD = sorted(name for name, k in SHIPPED.items() if k.op == "backward")
HULL = {"exact", "sdpa", "uniform", "performer", "hyperattention", "poly4_exact"}  # non-negative weights
# Deterministic (same examples on every machine and run), and no shrinking: a failing example is
# reported as drawn, so a regression cannot stall CI for minutes while hypothesis minimises it.
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                phases=(Phase.explicit, Phase.generate),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

# Magnitudes of entries: ordinary, tiny, zero, large and near each dtype's largest value.
MAGNITUDES = st.sampled_from([1.0, 0.5, 3.0, 0.0, 1e-30, 1e3, 1e20, "max"])
# Adversarial values a careless caller passes for a number.
BAD_NUMBERS = [float("nan"), float("inf"), -float("inf"), -1, 0, 10**9, 10**18, 1e300, "abc", [1], {"a": 1}, True]


# What one example attacks: nothing (a clean call, to check results), the magnitudes of the
# entries, one NaN/inf entry, the scale, the parameters, or a shape.
HOSTILITY = st.sampled_from(["none", "none", "none", "values", "special", "scale", "params", "shape"])
GOOD_SCALES = [None, 1.0, 0.5]
BAD_SCALES = [1e-30, 1e30, 0.0, -1.0, float("nan"), float("inf")]


@st.composite
def tensors(draw, shape: tuple[int, ...], dtype: torch.dtype, hostility: str = "values") -> torch.Tensor:
    magnitude = draw(MAGNITUDES) if hostility == "values" else draw(st.sampled_from([1.0, 0.5, 2.0]))
    top = torch.finfo(dtype).max * 0.99 if magnitude == "max" else float(magnitude)
    seed = draw(st.integers(0, 2**16))
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1) * top
    x = x.to(dtype)
    special = draw(st.sampled_from([float("nan"), float("inf"), -float("inf")])) if hostility == "special" else None
    if special is not None and x.numel():
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = special
    return x


def _valid(spec: Param) -> st.SearchStrategy:
    """Small valid values of a declared parameter (large ones would allocate for real)."""
    if spec.choices:
        return st.sampled_from(spec.choices)
    if spec.kind == "bool":
        return st.booleans()
    low = 0 if spec.low is None else spec.low
    if spec.kind == "int":
        return st.integers(int(math.ceil(low)) + (1 if spec.open_low and low == int(low) else 0),
                           int(min(spec.high if spec.high is not None else low + 64, low + 64)))
    high = spec.high if spec.high is not None else low + 1e9
    return st.floats(low, high, exclude_min=spec.open_low, exclude_max=spec.open_high, allow_nan=False)


@st.composite
def params(draw, kernel: str, hostile: bool = True) -> dict:
    """A few of the kernel's parameters: valid values, or (hostile) adversarial numbers, huge
    sizes, None and unknown names."""
    schema = KERNELS[kernel].schema
    out = {}
    for name in draw(st.lists(st.sampled_from(sorted(schema)), unique=True, max_size=3)) if schema else []:
        bad = st.one_of(st.sampled_from(BAD_NUMBERS), st.just(None))
        out[name] = draw(st.one_of(_valid(schema[name]), bad) if hostile else _valid(schema[name]))
    if hostile and draw(st.booleans()):  # an unknown parameter
        out[draw(st.sampled_from(["eps", "degree", "bogus", "features"]))] = 1
    return out


@st.composite
def attention_problem(draw) -> tuple:
    hostility = draw(HOSTILITY)
    dtype = draw(st.sampled_from(DTYPES[:2] * 3 + DTYPES[2:]))
    lead = draw(st.sampled_from([(), (2,)]))
    n, m, d, dv = (draw(st.integers(1, 6)) for _ in range(4))
    shapes = [lead + (n, d), lead + (m, d), lead + (m, dv)]
    if hostility == "shape":
        i = draw(st.integers(0, 2))
        shapes[i] = draw(st.sampled_from([shapes[i][:-1] + (0,), shapes[i][:-2] + (shapes[i][-2] + 1, shapes[i][-1]),
                                          shapes[i][-1:], (3,) + shapes[i]]))
    q, k, v = (draw(tensors(shape, dtype, hostility)) for shape in shapes)
    scale = draw(st.sampled_from(BAD_SCALES if hostility == "scale" else GOOD_SCALES + [1.0 / d]))
    return q, k, v, scale, hostility == "params"


def _check_forward(name: str, q, k, v, scale, kw, out) -> str:
    """Assert a returned result is right; return how it was verified."""
    assert isinstance(out, torch.Tensor), f"{name} returned {type(out).__name__}"
    assert bool(torch.isfinite(out).all()), f"{name} returned non-finite values silently"
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    assert tuple(out.shape) == (*batch, q.shape[-2], v.shape[-1]), f"{name}: shape {tuple(out.shape)}"
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    vmax = float(v.double().abs().max())
    m, u = k.shape[-2], unit_roundoff(q.dtype)
    if name in ("exact", "sdpa") and q.dtype in (torch.float32, torch.float64):
        try:
            atol = softmax_attention_bound(q, k, v, s, rescales=m if name == "sdpa" else 0)
        except ValueError:
            atol = None  # the rounding bound is vacuous at this logit reach: the hull check below still applies
        if atol is not None:
            err = float((out.double() - reference_attention(q, k, v, s)).abs().max())
            assert err <= atol, f"{name}: error {err:.3g} > derived bound {atol:.3g}"
            return "verified"
    if name == "uniform":
        err = float((out.double() - v.double().mean(dim=-2, keepdim=True)).abs().max())
        assert err <= 2 * gamma(m + 1, q.dtype) * vmax, f"uniform: error {err:.3g}"
        return "verified"
    if name == "polynomial" and q.dtype == torch.float64:
        rho_q = float(torch.linalg.vector_norm(q, dim=-1).amax())
        rho_k = float(torch.linalg.vector_norm(k, dim=-1).amax())
        radius = kw.get("radius") or s * rho_q * rho_k * (1 + 2 * (q.shape[-1] + 2) * torch.finfo(q.dtype).eps)
        approx = choose_approx(radius, kw.get("eps") or 1e-3, kw.get("degree"))
        eps = approx.relative_error * GRID_SLACK
        # The tight proven bound 2ε/(1+√(1−ε²))·‖V‖_max (docs/polynomial.md; ε = 0, an exact P at
        # radius 0, leaves rounding only) plus the worst-case rounding term.
        bound = (theory.output_error_bound(eps, vmax) if eps > 0 else 0.0) + theory.rounding_error_bound(
            u, m, q.shape[-1], approx.degree, approx.condition(), vmax)
        err = float((out.double() - reference_attention(q, k, v, s)).abs().max())
        assert err <= bound, f"polynomial: error {err:.3g} > proven bound {bound:.3g} (degree {approx.degree})"
        return "verified"
    width = max(m, kw.get("features") or 256) + q.shape[-1] + 4
    if name in HULL and width * unit_roundoff(q.dtype) < 0.5:  # else γ is vacuous in this dtype
        assert float(out.double().abs().max()) <= vmax * (1 + 2 * gamma(width, q.dtype)), \
            f"{name}: output outside the convex hull of V"
        return "verified"
    return "finite"


# The polynomial kernel's fuzz builds a minimax (Remez) approximation per drawn (R, ε): seconds,
# so it runs in the full suite only (conftest: "many fits").
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "polynomial" else n
                                  for n in FORWARD])
@FUZZ
@given(problem=attention_problem(), data=st.data())
def test_forward_kernels_end_in_a_clear_error_or_a_correct_result(name, problem, data):
    q, k, v, scale, hostile = problem
    kw = data.draw(params(name, hostile))
    outcome, value = attempt(lambda: KERNELS[name](q, k, v, scale=scale, **kw))
    if outcome == "result":
        outcome = _check_forward(name, q, k, v, scale, kw, value)
    record("api", name, outcome)


@st.composite
def gradient_problem(draw) -> tuple:
    hostility = draw(HOSTILITY)
    dtype = draw(st.sampled_from(DTYPES[:2] * 3 + DTYPES[2:]))
    n, d = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    shapes = [(n, d), (n, d), (n, d), (d, d), (d, d), (n, d)]
    if hostility == "shape":
        i = draw(st.integers(0, 5))
        shapes[i] = (shapes[i][0] + 1, shapes[i][1])
    # Only one input is hostile at a time, so the others do not mask what it does.
    target = draw(st.integers(0, 5))
    tensors_ = [draw(tensors(shape, dtype, hostility if i == target else "none")) for i, shape in enumerate(shapes)]
    scale = draw(st.sampled_from(BAD_SCALES if hostility == "scale" else GOOD_SCALES + [1.0 / d]))
    return tensors_, scale, hostility == "params"


@pytest.mark.parametrize("name", BACKWARD + ["attention_loss"])
@FUZZ
@given(problem=gradient_problem(), data=st.data())
def test_gradients_end_in_a_clear_error_or_a_finite_result(name, problem, data):
    inputs, scale, hostile = problem
    if name == "attention_loss":
        outcome, value = attempt(lambda: attention_loss(*inputs, scale=scale))
        expected_shape: tuple = ()
    else:
        kw = data.draw(params(name, hostile))
        outcome, value = attempt(lambda: KERNELS[name](*inputs, scale=scale, **kw))
        expected_shape = tuple(inputs[3].shape)
    if outcome == "result":
        assert bool(torch.isfinite(value).all()), f"{name} returned non-finite values silently"
        assert tuple(value.shape) == expected_shape
        outcome = "finite"
    record("api", name, outcome)


# ----- theory functions -------------------------------------------------------------------------
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**12),
                    st.sampled_from(BAD_NUMBERS + [1, 2, 8, 1e-3, 0.5]))
SMALL = st.one_of(st.integers(-2, 64), NUMBERS)


def _tensor_arg(draw) -> torch.Tensor:
    shape = (draw(st.integers(0, 4)), draw(st.integers(1, 3)))
    return draw(tensors(shape, draw(st.sampled_from(DTYPES[:2])), draw(HOSTILITY)))


THEORY = {
    "logit_radius": lambda draw: (lambda q: (q, q.clone(), draw(st.one_of(st.none(), NUMBERS))))(_tensor_arg(draw)),
    "degree_for": lambda draw: (draw(NUMBERS), draw(NUMBERS), draw(SMALL)),
    "entry_threshold": lambda draw: (draw(NUMBERS),),
    "output_error_bound": lambda draw: (draw(NUMBERS), draw(NUMBERS)),
    "rounding_error_bound": lambda draw: tuple(draw(x) for x in (NUMBERS, SMALL, SMALL, SMALL, NUMBERS, NUMBERS)),
    "exact_forward_cost": lambda draw: tuple(draw(SMALL) for _ in range(4)),
    "polynomial_forward_cost": lambda draw: tuple(draw(SMALL) for _ in range(5)),
    "feature_rank": lambda draw: (draw(SMALL), draw(SMALL)),
    "paper_rank_bound": lambda draw: (draw(SMALL), draw(SMALL)),
    "max_degree_within": lambda draw: tuple(draw(SMALL) for _ in range(4)) + (draw(NUMBERS),),
    "exact_gradient_cost": lambda draw: (draw(SMALL), draw(SMALL)),
    "lowrank_gradient_cost": lambda draw: (draw(SMALL), draw(SMALL), draw(SMALL)),
    "polynomial_autograd_gradient_cost": lambda draw: (draw(SMALL), draw(SMALL), draw(SMALL)),
}
MAY_BE_INFINITE = {"rounding_error_bound"}  # documented: inf when γ_N·κ ≥ 1


def _finite(value) -> bool:
    if isinstance(value, theory.Cost):
        return math.isfinite(value.flops) and math.isfinite(value.bytes) and value.flops >= 0 and value.bytes >= 0
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        isinstance(value, int) or math.isfinite(value))


@pytest.mark.parametrize("name", sorted(THEORY))
@FUZZ
@given(data=st.data())
def test_theory_functions_validate_their_inputs(name, data):
    args = THEORY[name](data.draw)
    outcome, value = attempt(lambda: getattr(theory, name)(*args))
    if outcome == "result":
        ok = _finite(value) or name in MAY_BE_INFINITE and value == math.inf
        assert ok, f"theory.{name}{args!r} returned {value!r} silently"
        outcome = "finite"
    record("api", f"theory.{name}", outcome)


def test_every_kernel_declares_a_schema_for_every_parameter():
    """The spec loader can only check what is declared (ditbench.measure.validate)."""
    for name, kernel in SHIPPED.items():
        missing = sorted(set(kernel.params) - set(kernel.schema))
        assert not missing, f"kernel {name!r} declares no schema for {missing}"
        for param, default in kernel.params.items():
            kernel.schema[param].check(param, default)  # the defaults themselves are valid


def test_hang_guard_counts_cpu_time_and_fires():
    """The guard behind every fuzzed call: a busy loop is stopped once it has used the CPU time
    allowed (0.2 s here); sleeping uses none, so a loaded machine's waiting never counts."""
    import time

    from fuzzing import hang_guard

    with pytest.raises(TimeoutError, match="CPU time"), hang_guard(0.2):
        while True:
            pass
    with hang_guard(0.2):
        time.sleep(0.4)  # wall time past the limit, CPU time far below it
