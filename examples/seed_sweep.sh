#!/usr/bin/env bash
# Zero false fails: grade the reference and the correct sample of every assignment under SEEDS
# grading seeds (default 200: hours on a 2-core machine), JOBS at a time, and list every check a
# correct submission lost. Writes out/seeds/<assignment>/<submission>-<seed>.json.
#   SEEDS=6 JOBS=2 bash examples/seed_sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DGM=${DGM:-.venv/bin/dgm-grade}
SEEDS=${SEEDS:-200}
JOBS=${JOBS:-2}
jobs_file=$(mktemp)
for dir in examples/hw*/; do
  assignment=$(basename "$dir")
  module=$(.venv/bin/python -c \
    "from grader.assignment import load_assignment as l; print(l('$assignment').config.module)")
  for seed in $(seq 1 "$SEEDS"); do
    for submission in "reference/$module.py" "$dir/correct.py"; do
      echo "$assignment $submission $seed" >>"$jobs_file"
    done
  done
done
grade_one() {
  local assignment=$1 submission=$2 seed=$3 name
  name=$(basename "$(dirname "$submission")")-$(basename "$submission" .py)
  "$DGM" grade "$submission" --assignment "$assignment" --seed "$seed" --sandbox process --quiet \
    --out "out/seeds/$assignment/$name-$seed.json" >/dev/null
}
export -f grade_one
export DGM
xargs -P "$JOBS" -L 1 bash -c 'grade_one "$@"' _ <"$jobs_file"
rm -f "$jobs_file"
.venv/bin/python - <<'PY'
import json, pathlib
runs = sorted(pathlib.Path("out/seeds").glob("*/*.json"))
lost = [(str(p), t["name"]) for p in runs for t in json.loads(p.read_text())["tests"] if t["score"] < t["max_score"]]
print(f"{len(runs)} gradings of correct submissions, {len(lost)} checks lost")
for path, name in lost:
    print(f"  {path}: {name}")
PY
