#!/usr/bin/env bash
# Grade every bundled sample submission (examples/<assignment>/<submission>) with all checks.
# Writes out/<assignment>/<submission>.json and prints one score line per submission.
set -euo pipefail
cd "$(dirname "$0")/.."
DGM=${DGM:-.venv/bin/dgm-grade}
for dir in examples/hw*/; do
  assignment=$(basename "$dir")
  for submission in "$dir"*; do
    "$DGM" grade "$submission" --assignment "$assignment" --out "out/$assignment/$(basename "$submission").json" --quiet
  done
done
