#!/usr/bin/env bash
# Determinism: grade the same submission RUNS times (default 20) with one grading seed, and compare
# every results.json with the first: check names, scores, statuses and outputs must be identical apart
# from timing and the worker's uid (each run gets a free one). The submission is each assignment's
# partly_wrong.py by default: its failures go through shrinking, counterexamples and hints, where
# nondeterminism would show. Writes $OUT/<assignment>/run-<i>.json (OUT: out/determinism).
#   RUNS=20 JOBS=2 bash examples/determinism.sh
#   RUNS=5 ASSIGNMENTS="hw2_vae" SUBMISSION=correct.py SEED=7 bash examples/determinism.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source examples/grade_jobs.sh
RUNS=${RUNS:-20}
SEED=${SEED:-2026}
SUBMISSION=${SUBMISSION:-partly_wrong.py}
OUT=${OUT:-out/determinism}
jobs_file=$(mktemp)
for assignment in $ASSIGNMENTS; do
  for run in $(seq 1 "$RUNS"); do
    echo "$assignment examples/$assignment/$SUBMISSION $SEED $OUT/$assignment/run-$run.json" >>"$jobs_file"
  done
done
grade_jobs "$jobs_file"
rm -f "$jobs_file"
OUT=$OUT "$PYTHON" - <<'PY'
import json, os, pathlib, re

def comparable(path):
    """What must not change between runs: everything but timing and the worker's uid."""
    results = json.loads(path.read_text())
    text = json.dumps({k: v for k, v in results.items() if k != "execution_time"}, sort_keys=True)
    return re.sub(r"uid \d+", "uid N", text)

differing = 0
for folder in sorted(p for p in pathlib.Path(os.environ["OUT"]).iterdir() if p.is_dir()):
    runs = sorted(folder.glob("run-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    first = comparable(runs[0])
    odd = [p.name for p in runs[1:] if comparable(p) != first]
    differing += len(odd)
    score = json.loads(runs[0].read_text())["score"]
    print(f"{folder.name}: {len(runs)} gradings, score {score}, "
          + (f"{len(odd)} differ from run-1: {', '.join(odd)}" if odd else "all identical"))
print(f"{differing} gradings differ")
PY
