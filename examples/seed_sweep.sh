#!/usr/bin/env bash
# Zero false fails: grade the reference and the correct sample of every assignment under SEEDS
# grading seeds (default 200: hours on a 2-core machine), JOBS at a time, and list every check a
# correct submission lost. Writes $OUT/<assignment>/<submission>-<seed>.json (OUT: out/seeds).
#   SEEDS=6 JOBS=2 bash examples/seed_sweep.sh
#   FIRST_SEED=4 SEEDS=10 ASSIGNMENTS="hw1_foundations hw3_flows" OUT=out/seeds-4 bash examples/seed_sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source examples/grade_jobs.sh
SEEDS=${SEEDS:-200}
FIRST_SEED=${FIRST_SEED:-1}
OUT=${OUT:-out/seeds}
jobs_file=$(mktemp)
for assignment in $ASSIGNMENTS; do
  dir=examples/$assignment
  module=$(.venv/bin/python -c \
    "from grader.assignment import load_assignment as l; print(l('$assignment').config.module)")
  for seed in $(seq "$FIRST_SEED" $((FIRST_SEED + SEEDS - 1))); do
    for submission in "reference/$module.py" "$dir/correct.py"; do
      name=$(basename "$(dirname "$submission")")-$(basename "$submission" .py)
      echo "$assignment $submission $seed $OUT/$assignment/$name-$seed.json" >>"$jobs_file"
    done
  done
done
grade_jobs "$jobs_file"
rm -f "$jobs_file"
OUT=$OUT .venv/bin/python - <<'PY'
import json, os, pathlib
runs = sorted(pathlib.Path(os.environ["OUT"]).glob("*/*.json"))
lost = [(str(p), t["name"]) for p in runs for t in json.loads(p.read_text())["tests"] if t["score"] < t["max_score"]]
print(f"{len(runs)} gradings of correct submissions, {len(lost)} checks lost")
for path, name in lost:
    print(f"  {path}: {name}")
PY
