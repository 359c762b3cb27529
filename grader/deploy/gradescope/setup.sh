#!/usr/bin/env bash
# dgm-grade autograder, setup: Gradescope runs this once, as root, in /autograder/source, when it
# builds the autograder image (its default base: Ubuntu 22.04 with python3 3.10).
#   1. a Python >= $DGM_PYTHON with venv (apt when missing)   3. the dgm-grade wheel, -c constraints.txt
#   2. a venv in $DGM_VENV with the CPU-only torch             4. lock down: the worker's uid reads no checks
# Settings: settings.env beside this file. pip's own variables (PIP_INDEX_URL, PIP_FIND_LINKS,
# PIP_NO_INDEX) are honoured, so the same script runs against a local wheelhouse.
set -euo pipefail
cd "$(dirname "$0")"
source ./settings.env
log() { printf '[dgm-grade setup] %s\n' "$*"; }
started=$(date +%s)

# A Python at least $DGM_PYTHON, so that every pin of constraints.txt holds (the judge then draws
# the same examples as `dgm-grade grade` does locally). Ubuntu 22.04's python3 is 3.10: its
# universe archive has python3.11, which apt installs.
new_enough() { "$1" -c "import sys; sys.exit(sys.version_info[:2] < tuple(map(int, '$DGM_PYTHON'.split('.'))))" 2>/dev/null; }
python=python3
if ! new_enough python3; then
    python=python$DGM_PYTHON
    if ! new_enough "$python"; then
        log "$(python3 --version 2>&1) is older than $DGM_PYTHON: apt-get install $python"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$python" "$python-venv" >/dev/null \
            || { log "error: cannot install $python; use an image with Python >= $DGM_PYTHON (Gradescope: Ubuntu 24.04)"; exit 1; }
    fi
fi
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    venv_package=$([ "$python" = python3 ] && echo python3-venv || echo "$python-venv")
    log "apt-get install $venv_package"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$venv_package" >/dev/null
fi
log "$("$python" --version), venv in $DGM_VENV"
rm -rf "$DGM_VENV"
"$python" -m venv "$DGM_VENV"
pip=("$DGM_VENV/bin/python" -m pip --disable-pip-version-check --no-input -q)

log "torch $DGM_TORCH_VERSION (CPU) from $DGM_TORCH_INDEX ($(( $(date +%s) - started )) s)"
"${pip[@]}" install --index-url "$DGM_TORCH_INDEX" --extra-index-url "$DGM_PYPI_INDEX" -c constraints.txt \
    "torch==$DGM_TORCH_VERSION"
log "$DGM_WHEEL and its dependencies, pinned by constraints.txt ($(( $(date +%s) - started )) s)"
"${pip[@]}" install --index-url "$DGM_PYPI_INDEX" -c constraints.txt "./$DGM_WHEEL"

log "installed ($(( $(date +%s) - started )) s)"
# Lock down. The grader runs as root; each worker (student code) runs as a uid of its own
# (61000-64999). That uid may run the venv's python and import torch, but may not read the
# grader, the checks or the reference (installed packages, their file list), nor this folder.
site=$("$DGM_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
chmod -R go-rwx "$site/grader" "$site/reference" "$site/assignments" "$site"/dgm_grade-*.dist-info
chown -R root:root /autograder/source
chmod -R go-rwx /autograder/source

# Check what the worker's uid can do, as that uid
probe_uid=64999
if command -v setpriv >/dev/null; then
    as_worker=(setpriv --reuid=$probe_uid --regid=$probe_uid --clear-groups)
    "${as_worker[@]}" "$DGM_VENV/bin/python" -I -c 'import torch, numpy, safetensors' \
        || { log "error: the worker's uid cannot import torch from $DGM_VENV"; exit 1; }
    # (modules, not packages: a package folder it cannot read would still import as an empty namespace)
    for forbidden in "import grader.judge" "import reference.$DGM_MODULE" "import assignments.$DGM_ASSIGNMENT.checks_hidden" \
                     "open('/autograder/source/$DGM_WHEEL')" "open('/autograder/source/settings.env')"; do
        if "${as_worker[@]}" "$DGM_VENV/bin/python" -I -c "$forbidden" 2>/dev/null; then
            log "error: the worker's uid can still run: $forbidden"; exit 1
        fi
    done
else
    log "warning: setpriv not found (util-linux): grading drops privileges in Python instead"
fi
"$DGM_VENV/bin/dgm-grade" list >/dev/null
log "done in $(( $(date +%s) - started )) s"
