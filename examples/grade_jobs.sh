# Sourced by seed_sweep.sh and determinism.sh: the settings they share, and grade_jobs FILE, which
# grades each line of FILE ("<assignment> <submission> <seed> <results.json>") in the process
# sandbox, JOBS at a time (DGM: the dgm-grade to run, PYTHON: the interpreter it is installed in;
# ASSIGNMENTS: which ones, default all).
DGM=${DGM:-.venv/bin/dgm-grade}
PYTHON=${PYTHON:-.venv/bin/python}
JOBS=${JOBS:-2}
ASSIGNMENTS=${ASSIGNMENTS:-$(cd examples && echo hw*)}

grade_one() {
  "$DGM" grade "$2" --assignment "$1" --seed "$3" --sandbox process --quiet --out "$4" >/dev/null
}

grade_jobs() {
  export -f grade_one
  export DGM
  xargs -r -P "$JOBS" -L 1 bash -c 'grade_one "$@"' _ <"$1"
}
