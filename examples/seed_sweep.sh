#!/usr/bin/env bash
# Zero false fails: grade the reference and the correct sample of every assignment under SEEDS
# grading seeds (default 200: hours on a 2-core machine), JOBS at a time, and list every check a
# correct submission lost. Writes $OUT/<assignment>/<submission>-<seed>.json (OUT: out/seeds).
#   SEEDS=6 JOBS=2 bash examples/seed_sweep.sh
#   FIRST_SEED=4 SEEDS=10 ASSIGNMENTS="hw1_foundations hw3_flows" OUT=out/seeds-4 bash examples/seed_sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DGM=${DGM:-.venv/bin/dgm-grade}
SEEDS=${SEEDS:-200}
FIRST_SEED=${FIRST_SEED:-1}
JOBS=${JOBS:-2}
OUT=${OUT:-out/seeds}
ASSIGNMENTS=${ASSIGNMENTS:-$(cd examples && echo hw*)}
jobs_file=$(mktemp)
for assignment in $ASSIGNMENTS; do
  dir=examples/$assignment
  module=$(.venv/bin/python -c \
    "from grader.assignment import load_assignment as l; print(l('$assignment').config.module)")
  for seed in $(seq "$FIRST_SEED" $((FIRST_SEED + SEEDS - 1))); do
    for submission in "reference/$module.py" "$dir/correct.py"; do
      echo "$assignment $submission $seed" >>"$jobs_file"
    done
  done
done
grade_one() {
  local assignment=$1 submission=$2 seed=$3 name
  name=$(basename "$(dirname "$submission")")-$(basename "$submission" .py)
  "$DGM" grade "$submission" --assignment "$assignment" --seed "$seed" --sandbox process --quiet \
    --out "$OUT/$assignment/$name-$seed.json" >/dev/null
}
export -f grade_one
export DGM OUT
xargs -P "$JOBS" -L 1 bash -c 'grade_one "$@"' _ <"$jobs_file"
rm -f "$jobs_file"
OUT=$OUT .venv/bin/python - <<'PY'
import json, os, pathlib
runs = sorted(pathlib.Path(os.environ["OUT"]).glob("*/*.json"))
lost = [(str(p), t["name"]) for p in runs for t in json.loads(p.read_text())["tests"] if t["score"] < t["max_score"]]
print(f"{len(runs)} gradings of correct submissions, {len(lost)} checks lost")
for path, name in lost:
    print(f"  {path}: {name}")
PY
