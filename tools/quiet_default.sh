#!/usr/bin/env bash
# Three default runs back to back and their drift diagnostics (issue 11; run on a quiet machine).
# Usage, from the repository root with the project's environment:
#   tools/quiet_default.sh OUTDIR        # writes OUTDIR/run{1,2,3}/ and OUTDIR/summary.txt
# Prints, per run, the CPU model, `uptime` before and after and the wall time; then the headline
# half-widths and per-pass spread (tools/pass_spread.py) and each headline fit with and without
# the drift reference (tools/drift_refit.py: γ̂, correlation, within-point sd before/after).
set -euo pipefail
out=${1:?usage: tools/quiet_default.sh OUTDIR}
mkdir -p "$out"
{
  lscpu | grep -m1 "Model name"
  git log -1 --format="commit %h %s"
  for i in 1 2 3; do
    echo "run $i before: $(uptime)"
    /usr/bin/time -f "run $i: %e s wall" python -m ditbench run --out "$out/run$i" --quiet
    echo "run $i after: $(uptime)"
  done
  python tools/pass_spread.py "$out"/run1 "$out"/run2 "$out"/run3
  python tools/drift_refit.py "$out"/run1 "$out"/run2 "$out"/run3
} 2>&1 | tee "$out/summary.txt"
