"""ditbench: when can attention, and its training gradient, be computed in almost-linear time?

The package root is cheap: it imports nothing heavy (no torch) until a name below is used, so
``import ditbench.fit`` or ``import ditbench.report`` (which read result files only) stay fast.
Kernels are registered by :func:`ditbench.attention.registry.load_kernels` (built-ins, then the
``ditbench.kernels`` entry-point group), which ``import ditbench.attention`` calls.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
# name → module that defines it (imported on first access).
_LAZY = {
    "KERNELS": "ditbench.attention", "exact_attention": "ditbench.attention",
    "polynomial_attention": "ditbench.attention", "sdpa_attention": "ditbench.attention",
    "theory": "ditbench.theory",
}
__all__ = ["KERNELS", "exact_attention", "polynomial_attention", "sdpa_attention", "theory", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ditbench' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if module.endswith("." + name) else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
