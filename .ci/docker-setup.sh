#!/usr/bin/env bash
# Make Docker usable on a fresh CI machine (Debian bookworm, root, no image registry)
# and build the grading image offline:
#   docker.io + debootstrap + bubblewrap (apt), dockerd in the background, dgm-grade-base:offline,
#   dgm-grade:latest. Every step is skipped when its result already exists.
# Env: PYTHON (a python with the Docker SDK to run grader/deploy/image.py; default python3 when
#      it has the SDK, else Debian's /usr/bin/python3 with python3-docker from apt),
#      DOCKERD_LOG (default /tmp/dockerd.log), DOCKERD_WAIT (seconds, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[docker-setup] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (installs packages, starts dockerd, runs debootstrap)"

# the SDK, not the repository's docker/ folder (which imports as an empty namespace package)
has_sdk() { "$1" -c 'import sys, docker; sys.exit(not hasattr(docker, "APIClient"))' 2>/dev/null; }

packages=()
command -v dockerd >/dev/null || packages+=(docker.io)
command -v debootstrap >/dev/null || packages+=(debootstrap)
command -v bwrap >/dev/null || packages+=(bubblewrap)  # the process sandbox's jail (not Docker's)
command -v chromium >/dev/null || packages+=(chromium)  # headless browser: the class report's test
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif has_sdk python3; then
    PY=python3
else
    PY=/usr/bin/python3
    has_sdk "$PY" || packages+=(python3-docker)
fi
if [ ${#packages[@]} -gt 0 ]; then
    log "apt-get install ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    logfile=${DOCKERD_LOG:-/tmp/dockerd.log}
    log "starting dockerd (log: $logfile)"
    nohup dockerd >"$logfile" 2>&1 &
    wait_s=${DOCKERD_WAIT:-60}
    for _ in $(seq "$wait_s"); do
        docker info >/dev/null 2>&1 && break
        kill -0 $! 2>/dev/null || { tail -n 20 "$logfile" >&2; die "dockerd exited, see $logfile"; }
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -n 20 "$logfile" >&2; die "dockerd did not answer within ${wait_s} s, see $logfile"; }
fi
log "docker daemon $(docker version -f '{{.Server.Version}}' 2>/dev/null) is up"

has_sdk "$PY" || die "$PY cannot import the Docker SDK (pip install docker)"
"$PY" -m grader.deploy.image --offline --quiet
