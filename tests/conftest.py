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
