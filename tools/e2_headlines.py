"""E2's two headline fits of one or more runs: ``python tools/e2_headlines.py RUN_DIR [RUN_DIR ...]``.

For each run directory (holding results.csv, as ``ditbench run`` writes it) prints the constant-B
and growing-B headline fits (docs/phase.md "Headline fits"): exponent with its 95% interval, the
half-width against issue 11's ±0.05, the label and its reason, and the cost model's exponent on the
same sizes with the label that exponent gets; ``sound`` says whether the measured label is that
label or a cautious one. The same fit as ``ditbench fit`` (block by block, passes as the two-level
variance model's); the same table as the report's phase section. Ends with one line per headline
and run (for the README's three-run table).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ditbench.fit.readers import read_results
from ditbench.report.phase import headline_rows, headline_table


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    lines = []
    for run in argv:
        path = Path(run) / "results.csv" if Path(run).is_dir() else Path(run)
        if not path.is_file():
            print(f"{run}: no results.csv there", file=sys.stderr)
            return 2
        rows = read_results(path)
        table = headline_table(rows)
        lines += [f"{h.regime:10s} {run}: {h.exponent:.3f} [{h.ci_low:.3f}, {h.ci_high:.3f}] ±{h.half_width:.3f} "
                  f"{h.label} (cost model {h.predicted:.3f} {h.model_label}; sound: {'yes' if h.sound else 'NO'})"
                  for h in headline_rows(rows).itertuples()]
        print(f"== {run}")
        if table.empty:
            print("   no E2 headline rows (E2-constant B=3, E2-regime B=0.5*sqrt(log(n)))")
            continue
        with pd.option_context("display.width", 200, "display.max_colwidth", 200):
            print(table.drop(columns=["theory"]).T.to_string(header=False))
    print("\n".join(["== summary", *sorted(lines, key=lambda line: line.split()[0] != "constant")]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
