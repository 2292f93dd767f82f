"""The test suite's own tolerance helpers: the diagnostic message and the bounds' honesty."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import reference_attention
from tolerances import assert_close, gamma, softmax_attention_bound, unit_roundoff


def test_assert_close_passes_within_and_names_the_worst_element_beyond():
    assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-12], atol=1e-11)
    with pytest.raises(AssertionError) as err:
        assert_close(torch.tensor([[1.0, 2.0], [3.0, 4.5]]), np.array([[1.0, 2.1], [3.0, 4.0]]), atol=0.01,
                     what="demo")
    msg = str(err.value)
    # Worst by error / allowance: (1, 1) with |err| 0.5; 2 of 4 elements fail.
    assert "demo" in msg and "2 of 4 elements (50.0%)" in msg and "worst at (1, 1)" in msg
    assert "actual=4.5" in msg and "expected=4.0" in msg


def test_assert_close_fails_on_nan_and_mismatched_inf_and_shape():
    with pytest.raises(AssertionError, match="1 of 2"):
        assert_close([1.0, math.nan], [1.0, 1.0], atol=1.0)
    assert_close([math.inf], [math.inf])
    with pytest.raises(AssertionError):
        assert_close([math.inf], [-math.inf], atol=1.0)
    with pytest.raises(AssertionError, match="shape"):
        assert_close([1.0, 2.0], [1.0], atol=1.0)


def test_gamma_is_highams_and_refuses_when_vacuous():
    u = unit_roundoff(torch.float32)
    assert u == 2.0**-24 and gamma(3, torch.float32) == 3 * u / (1 - 3 * u)
    with pytest.raises(ValueError, match="unbounded"):
        gamma(2**24, torch.float32)


def test_softmax_bound_holds_for_a_naive_float32_evaluation_and_is_not_vacuous(gen):
    # The bound is a worst case: a plain float32 softmax must lie inside it, and it must stay far
    # below the O(‖V‖) error of a real bug so that tests using it can fail.
    q, k, v = (torch.rand(64, 8, generator=gen, dtype=torch.float64) * 4 - 2 for _ in range(3))
    ref = reference_attention(q, k, v, 0.5)
    naive = torch.softmax(0.5 * q.float() @ k.float().T, -1) @ v.float()
    bound = softmax_attention_bound(q.float(), k.float(), v.float(), 0.5)
    assert_close(naive, ref, atol=bound)
    assert bound < 1e-3 * float((v.double().mean(0) - ref).abs().max())
