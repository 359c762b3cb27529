#!/usr/bin/env bash
# Build the CPU base image of the grading container without any image registry.
#
#   1. debootstrap --variant=minbase bookworm with python3, python3-pip, python3-venv
#      (the root fs tarball is cached in $DGM_CACHE_DIR, default /var/cache/dgm-grade)
#   2. docker import                                  -> dgm-grade-base:rootfs
#   3. docker run: venv /opt/venv, pip install torch==2.13.0 numpy safetensors
#      (the host's pip wheel folder and CA bundle mounted read-only), docker commit
#                                                     -> dgm-grade-base:offline (or $1)
#
# Idempotent: a step whose result exists is skipped. Needs root (debootstrap) and docker.
# Usage: grader/deploy/docker/build-offline-base.sh [TAG]
# Env:   DGM_CACHE_DIR, DEBIAN_MIRROR (default http://deb.debian.org/debian),
#        DGM_WHEELS (wheel folder; default: pip's find-links), DGM_CA (CA bundle; default: pip's cert)
set -euo pipefail

TAG=${1:-dgm-grade-base:offline}
CACHE=${DGM_CACHE_DIR:-/var/cache/dgm-grade}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTFS_TAR=$CACHE/rootfs-$SUITE-minbase-python3.tar
ROOTFS_IMAGE=dgm-grade-base:rootfs
REQUIREMENTS="$(cd "$(dirname "$0")" && pwd)/student-requirements.txt"
REQ_HASH=$(sha256sum "$REQUIREMENTS" | cut -c1-16)
SYSTEM_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[build-offline-base] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker is not installed (see .ci/docker-setup.sh)"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable (docker info fails)"

# Rebuilt when student-requirements.txt changes (its hash is a label of the image).
if [ "$(docker image inspect -f '{{ index .Config.Labels "dgm-grade.requirements" }}' "$TAG" 2>/dev/null)" = "$REQ_HASH" ]; then
    log "$TAG exists, nothing to do"
    exit 0
fi

# A setting of the host's pip: its env variable, else `pip config list` (first value).
pip_setting() {  # $1 = env variable, $2 = config key (find-links, cert)
    local value=${!1:-}
    if [ -z "$value" ]; then
        value=$(python3 -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.$2='\(.*\)'\$/\1/p" | head -n1 || true)
    fi
    value=${value%% *}
    printf '%s' "${value#file://}"
}

# 1. root file system, cached as a tarball
if [ ! -s "$ROOTFS_TAR" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    mkdir -p "$CACHE"
    work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    log "debootstrap $SUITE from $MIRROR"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv "$SUITE" "$work/root" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
    tar --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" .
    mv "$work/rootfs.tar" "$ROOTFS_TAR"
    rm -rf "$work"
    trap - EXIT
fi
log "root fs: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"

# 2. imported as an image
if ! docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
    docker import --change "ENV PATH=$SYSTEM_PATH" --change "ENV LANG=C.UTF-8" "$ROOTFS_TAR" "$ROOTFS_IMAGE" >/dev/null
fi

# 3. torch and student-requirements.txt in /opt/venv, then commit. The host's wheel folder and
# CA bundle are mounted inside a tmpfs, and pip's settings live only in the build
# shell, so neither mount points nor PIP_* variables end up in the image.
mounts=(--tmpfs /tmp -v "$REQUIREMENTS:/tmp/host/requirements.txt:ro")
pip_env="export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=180"
wheels=${DGM_WHEELS:-$(pip_setting PIP_FIND_LINKS find-links)}
if [ -n "$wheels" ] && [ -d "$wheels" ]; then
    mounts+=(-v "$wheels:/tmp/host/wheels:ro")
    pip_env+=" PIP_FIND_LINKS=/tmp/host/wheels"
    log "wheels from $wheels"
else
    log "warning: no local wheel folder (pip find-links): torch comes from the package index"
fi
ca=${DGM_CA:-$(pip_setting PIP_CERT cert)}
if [ -n "$ca" ] && [ -f "$ca" ]; then
    mounts+=(-v "$ca:/tmp/host/ca.crt:ro")
    pip_env+=" PIP_CERT=/tmp/host/ca.crt"
fi
builder=dgm-grade-base-build-$$
trap 'docker rm -f "$builder" >/dev/null 2>&1 || true' EXIT
log "pip install torch==2.13.0 -r student-requirements.txt"
docker run --name "$builder" "${mounts[@]}" "$ROOTFS_IMAGE" sh -ec "
    $pip_env
    python3 -m venv /opt/venv
    /opt/venv/bin/pip install -q torch==2.13.0 -r /tmp/host/requirements.txt
    MPLBACKEND=Agg /opt/venv/bin/python -c 'import torch, numpy, scipy, sklearn, matplotlib, tqdm, safetensors; print(\"torch\", torch.__version__)'
"
docker commit \
    --change "ENV PATH=/opt/venv/bin:$SYSTEM_PATH" \
    --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["python"]' \
    --change "LABEL dgm-grade.requirements=$REQ_HASH" \
    "$builder" "$TAG" >/dev/null
log "built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
