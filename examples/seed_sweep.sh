#!/usr/bin/env bash
# Zero false fails: grade the reference and the correct sample of every assignment under SEEDS
# grading seeds (default 200: hours on a 2-core machine), JOBS at a time, and list every check a
# correct submission lost. Writes $OUT/<assignment>/<submission>-<seed>.json (OUT: out/seeds).
# Seed by seed (every assignment under seed s before any under s + 1), so a sweep stopped part-way
# covers all assignments up to the same seed; run the same command again to go on: a grading whose
# results.json is there, finished, with the current checks (checks_hash) is not graded again. The
# summary counts finished gradings only, and lists those cut short (a killed run) apart.
#   SEEDS=6 JOBS=2 bash examples/seed_sweep.sh
#   FIRST_SEED=4 SEEDS=10 ASSIGNMENTS="hw1_foundations hw3_flows" OUT=out/seeds-4 bash examples/seed_sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source examples/grade_jobs.sh
export SEEDS=${SEEDS:-200} FIRST_SEED=${FIRST_SEED:-1} OUT=${OUT:-out/seeds} ASSIGNMENTS
jobs_file=$(mktemp)
"$PYTHON" - >"$jobs_file" <<'PY'
import json, os, pathlib
from grader.assignment import load_assignment

out, first = pathlib.Path(os.environ["OUT"]), int(os.environ["FIRST_SEED"])
assignments = {a: load_assignment(a) for a in os.environ["ASSIGNMENTS"].split()}

def done(path: pathlib.Path, checks_hash: str) -> bool:
    try:
        extra = json.loads(path.read_text())["extra_data"]
    except (OSError, ValueError, KeyError):
        return False
    return extra.get("finished") is True and extra.get("checks_hash") == checks_hash

for seed in range(first, first + int(os.environ["SEEDS"])):
    for name, a in assignments.items():
        for submission in (f"reference/{a.config.module}.py", f"examples/{name}/correct.py"):
            label = f"{pathlib.Path(submission).parent.name}-{pathlib.Path(submission).stem}"
            path = out / name / f"{label}-{seed}.json"
            if not done(path, a.checks_hash):
                print(name, submission, seed, path)
PY
echo "$(wc -l <"$jobs_file") gradings to run"
grade_jobs "$jobs_file"
rm -f "$jobs_file"
"$PYTHON" - <<'PY'
import collections, json, os, pathlib
runs = sorted(pathlib.Path(os.environ["OUT"]).glob("*/*.json"))
results = {p: json.loads(p.read_text()) for p in runs}
finished = {p: r for p, r in results.items() if r["extra_data"].get("finished") is True}
cut_short = [p for p in results if p not in finished]  # a killed run's unrun checks are not lost
lost = [(str(p), t["name"]) for p, r in finished.items() for t in r["tests"] if t["score"] < t["max_score"]]
print(f"{len(finished)} gradings of correct submissions, {len(lost)} checks lost")
if cut_short:
    print(f"{len(cut_short)} gradings cut short, not counted (the same command grades them again):")
    for path in cut_short:
        print(f"  cut short: {path}")
seeds = collections.defaultdict(set)
for r in finished.values():
    extra = r["extra_data"]
    seeds[extra["assignment"], extra["checks_hash"]].add(extra["seed"])
for (assignment, checks_hash), found in sorted(seeds.items()):
    print(f"  {assignment} (checks {checks_hash}): {len(found)} seeds, {min(found)}-{max(found)}")
for path, name in lost:
    print(f"  lost: {path}: {name}")
PY
