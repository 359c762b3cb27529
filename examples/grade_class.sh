#!/usr/bin/env bash
# Generate a class of hw2_vae submissions (correct, buggy, broken, hostile) and batch-grade it.
#   bash examples/grade_class.sh [STUDENTS] [extra batch options, e.g. --workers 4 --backend ray]
# Writes out/class/ (the submissions) and out/class_graded/ (grades.csv, report.html, one folder
# per student). Run it again: only what changed is graded again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STUDENTS=${1:-40}
shift || true
if [ ! -d out/class ]; then
  "$PY" examples/make_class.py out/class --students "$STUDENTS"
fi
"$PY" -m grader batch out/class --assignment hw2_vae --out out/class_graded "$@"
