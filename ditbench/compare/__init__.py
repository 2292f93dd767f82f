"""``ditbench compare``: two versions of the code (or two results directories), size by size and
exponent by exponent. Modules: :mod:`.sources` (what BASE and HEAD name), :mod:`.interleave`
(one sweep on two exported revisions, passes alternating), :mod:`.stats` (pass-level permutation tests + Holm,
Hodges–Lehmann ratios, exponent differences), :mod:`.table` (the printed table), :mod:`.page`
(the plotly page), :mod:`.cli`. User guide: docs/benchmarks.md, "ditbench compare".
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .stats import compare_exponents, compare_sizes
    from .thresholds import Thresholds

# Imported on first use: ``ditbench compare --help`` loads no scipy or pandas.
__getattr__, __dir__ = lazy_names(__name__, {
    "thresholds": ("Thresholds",), "stats": ("compare_exponents", "compare_sizes")})
__all__ = ["Thresholds", "compare_exponents", "compare_sizes"]
