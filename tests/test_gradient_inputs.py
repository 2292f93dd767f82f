"""Bad input, memory budgets and the backward-kernel registry."""
from __future__ import annotations

import pytest
import torch

from ditbench import theory
from ditbench.attention import KERNELS, Problem
from ditbench.gradient import (
    autograd_gradient, exact_gradient, lowrank_gradient, polynomial_autograd_gradient,
)
from gradient_cases import make_problem

ROUTINES = [exact_gradient, autograd_gradient, lowrank_gradient, polynomial_autograd_gradient]
BACKWARD = ["exact_gradient", "autograd_gradient", "lowrank_gradient", "polynomial_autograd_gradient"]


def _args(gen, n=12, d=3, dtype=torch.float64):
    return list(make_problem(gen, n, d, dtype=dtype))


@pytest.mark.parametrize("fn", ROUTINES)
@pytest.mark.parametrize("index,shape,match", [
    (0, (12, 4), "a2 has shape"), (1, (11, 3), "a2 has shape"), (3, (3, 4), "x has shape"),
    (4, (2, 2), "y has shape"), (5, (12, 2), "e has shape"), (0, (1, 12, 3), "a1 must be 2-D"),
])
def test_shape_errors(gen, fn, index, shape, match):
    args = _args(gen)
    args[index] = torch.zeros(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        fn(*args)


@pytest.mark.parametrize("fn", ROUTINES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_named(gen, fn, bad):
    args = _args(gen)
    args[2][3, 1] = bad
    with pytest.raises(ValueError, match="a3 has 1 non-finite"):
        fn(*args)


@pytest.mark.parametrize("fn", ROUTINES)
def test_dtype_device_scale_and_empty(gen, fn):
    args = _args(gen)
    with pytest.raises(ValueError, match="share a dtype"):
        fn(*args[:5], args[5].float())
    with pytest.raises(ValueError, match="dtype torch.int64"):
        fn(*args[:3], torch.zeros(3, 3, dtype=torch.int64), *args[4:])
    with pytest.raises(ValueError, match="scale=-1"):
        fn(*args, scale=-1.0)
    with pytest.raises(ValueError, match="empty problem"):
        fn(*(torch.zeros(0, 3, dtype=torch.float64),) * 3, *args[3:5], torch.zeros(0, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        fn(args[0].numpy(), *args[1:])


@pytest.mark.parametrize("fn", [lowrank_gradient, polynomial_autograd_gradient])
def test_polynomial_routes_refuse(gen, fn):
    args = _args(gen)
    for eps in (0.0, 1.0, -1e-3, 2.0):
        with pytest.raises(ValueError, match=f"eps={eps}"):
            fn(*args, eps=eps)
    with pytest.raises(ValueError, match="memory_budget=0"):
        fn(*args, memory_budget=0)
    with pytest.raises(ValueError, match="float32 and float64"):
        fn(*_args(gen, dtype=torch.float16))
    with pytest.raises(ValueError, match="degree=-1"):
        fn(*args, degree=-1)
    # radius ≈ 10: a degree-1 minimax P stays positive (E_1 ≤ E_0 = tanh R < 1), so it is accepted;
    # the "relative error ≥ 1" refusal needs the Chebyshev construction (tests/test_polynomial.py).
    big = [t * 4 for t in args]
    assert bool(torch.isfinite(fn(*big, scale=1.0, degree=1)).all())


def test_lowrank_memory_refusal_names_degree_and_eps(gen):
    args = _args(gen, n=200, d=4)
    need = lowrank_gradient(*args, scale=1.0, eps=1e-8, return_info=True)[1].predicted_bytes
    with pytest.raises(ValueError, match=r"degree ≤ \d+ \(k1 = \d+\) fits, i\.e\. eps ≥ ") as err:
        lowrank_gradient(*args, scale=1.0, eps=1e-8, memory_budget=need / 8)
    assert "k3=" in str(err.value)
    with pytest.raises(ValueError, match="not even degree 0 fits"):
        lowrank_gradient(*args, scale=1.0, eps=1e-8, memory_budget=16)
    with pytest.raises(ValueError, match="q_factor='bogus'"):
        lowrank_gradient(*args, q_factor="bogus")


def test_polynomial_autograd_memory_refusal(gen):
    with pytest.raises(ValueError, match="autograd keeps O\\(n·r\\) features"):
        polynomial_autograd_gradient(*_args(gen, n=200, d=4), scale=1.0, eps=1e-8, memory_budget=1 << 16)


def test_exact_block_size_refusal(gen):
    with pytest.raises(ValueError, match="block_size=0"):
        exact_gradient(*_args(gen), block_size=0)


##################################################################################
#                                  Registry                                      #
##################################################################################

@pytest.mark.parametrize("name", BACKWARD)
def test_registered_backward_kernels_match_functions(gen, name):
    kernel = KERNELS[name]
    assert kernel.op == "backward"
    args = _args(gen)
    direct = {"exact_gradient": exact_gradient, "autograd_gradient": autograd_gradient,
              "lowrank_gradient": lowrank_gradient, "polynomial_autograd_gradient": polynomial_autograd_gradient}[name]
    params = {"eps": 1e-4} if "eps" in kernel.params else {}
    assert torch.equal(kernel(*args, scale=0.5, **params), direct(*args, scale=0.5, **params))
    with pytest.raises(ValueError, match="does not take parameter"):
        kernel(*args, bogus=1)


def test_registry_cost_and_limits():
    p = Problem(n=2**14, m=2**14, d=4, dv=4, bound=0.5, scale=0.25)
    exact = KERNELS["exact_gradient"].predicted_cost(p)
    assert exact.flops == theory.exact_gradient_cost(2**14, 4, block=256).flops
    for name in ("lowrank_gradient", "polynomial_autograd_gradient"):
        assert KERNELS[name].predicted_cost(p).flops < exact.flops / 50  # the almost-linear routes
        assert KERNELS[name].unsupported_reasons(p) == []
    tight = KERNELS["lowrank_gradient"].unsupported_reasons(p, {"eps": 1e-6, "memory_budget": 1 << 16})
    assert len(tight) == 1 and "memory_budget" in tight[0]
    unbounded = Problem(n=64, m=64, d=4, dv=4)
    assert "no entry bound" in KERNELS["lowrank_gradient"].unsupported_reasons(unbounded)[0]


def test_gradient_cost_model_ranks():
    assert theory.gradient_ranks(4, 3) == (35, 39, 35 * 39)
    small = theory.lowrank_gradient_cost(1000, 4, 2, block=100)
    assert theory.lowrank_gradient_cost(2000, 4, 2, block=100).flops < 2.01 * small.flops  # linear in n
    assert theory.exact_gradient_cost(2000, 4).flops > 3.9 * theory.exact_gradient_cost(1000, 4).flops  # quadratic


@pytest.mark.parametrize("q_factor", ["paper", "direct"])
def test_lowrank_flops_match_cost_model(gen, q_factor):
    from torch.utils.flop_counter import FlopCounterMode

    n, d = 256, 4
    args = _args(gen, n=n, d=d)
    _, info = lowrank_gradient(*args, scale=0.5, eps=1e-3, q_factor=q_factor, return_info=True)
    with FlopCounterMode(display=False) as counter:
        lowrank_gradient(*args, scale=0.5, degree=info.degree, q_factor=q_factor, block_size=64, impl="torch")
    counted = counter.get_total_flops()  # matmuls only
    model = theory.lowrank_gradient_cost(n, d, info.degree, block=64, direct=q_factor == "direct").flops
    assert 4 * n * info.k1 * info.k2 * d <= counted <= model  # the two Kronecker contractions dominate
