"""``ditbench compare``: two versions of the code (or two results directories), size by size and
exponent by exponent. Modules: :mod:`.sources` (what BASE and HEAD name), :mod:`.interleave`
(one sweep on two exported revisions, passes alternating), :mod:`.stats` (pass-level permutation tests + Holm,
Hodges–Lehmann ratios, exponent differences), :mod:`.table` (the printed table), :mod:`.page`
(the plotly page), :mod:`.cli`. User guide: docs/benchmarks.md, "ditbench compare".
"""
from __future__ import annotations

from .stats import Thresholds, compare_exponents, compare_sizes

__all__ = ["Thresholds", "compare_exponents", "compare_sizes"]
