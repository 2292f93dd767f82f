"""Shared fixtures and the suite's conventions.

The ``slow`` marker (pyproject.toml): a test is marked slow when it takes seconds on its own — it
starts interpreters (worker processes, a second `ditbench run`, entry-point plugins), drives a
headless browser, or runs many fits or trials. ``pytest tests -m "not slow" -n auto`` (pytest-xdist)
is the developer's quick run and must stay under 60 s on a quiet 2-core machine (README, "Two
commands"); every test must also pass in an xdist worker (own tmp_path, no shared files); ``tox -e py``
(CI) runs every test, slow ones included, so marking a test slow never removes it from CI. Before
adding a test of more than a second to the quick run, make its fixture module- or session-scoped,
shrink its sizes where its point survives, or mark it slow — never weaken what it checks.
"""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

# Fixed, recorded thread count so tests behave the same on every 2-core runner.
torch.set_num_threads(int(os.environ.get("DITBENCH_TEST_THREADS", "2")))

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def gen() -> torch.Generator:
    """A fresh seeded generator per test (fresh random inputs, reproducible failures)."""
    seed = int.from_bytes(os.urandom(4), "little") if os.environ.get("DITBENCH_FRESH") else 1234
    return torch.Generator().manual_seed(seed)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Float64 gold reference, materialising the full logit matrix (small inputs only)."""
    logits = scale * q.double() @ k.double().transpose(-1, -2)  # (..., n, m)
    return torch.softmax(logits, dim=-1) @ v.double()  # (..., n, dv)


@pytest.fixture(autouse=True, scope="session")
def _one_calibration_per_session():
    """A run in this process (the in-process executor, ~20 tests) calibrates the machine before its
    first point: budget.calibrate times five blocks of exact attention at n = 2048, a second or
    more each time. Here it is measured once per (device, threads, dtype, repeats) and the measured
    rate reused, so every such run still budgets with a rate this machine produced. calibrate
    itself is tested in test_measure_budget.py; worker processes still calibrate themselves."""
    from ditbench.measure import budget, machine

    measured: dict[tuple, budget.Rates] = {}

    def calibrate_once(device: str, threads: int, dtype: torch.dtype = torch.float32,
                       repeats: int = budget.CALIBRATION_REPEATS) -> budget.Rates:
        key = (device, threads, dtype, repeats)
        if key not in measured:
            measured[key] = budget.calibrate(device, threads, dtype, repeats)
        return measured[key]

    patch = pytest.MonkeyPatch()
    patch.setattr(machine, "calibrate", calibrate_once)
    yield
    patch.undo()
