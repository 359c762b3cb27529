"""Build the grading image (grader/deploy/docker/Dockerfile): torch + the worker package, nothing else.

    build_image(base=None, offline=False)   FROM pytorch/pytorch (CUDA), needs a registry
    build_image(base=None, offline=True)    FROM dgm-grade-base:offline, made by
                                            docker/build-offline-base.sh without a registry
                                            (docker/ = grader/deploy/docker, package data)

The build context is a temporary folder holding only the Dockerfile and
grader/worker, so nothing else of the repository can reach the image.
The image is labelled with a digest of the worker files; the docker sandbox
refuses an image whose worker differs from this checkout's.

Imports only the standard library at module level (the CI script runs it
with a bare system python): ``python -m grader.deploy.image [--offline] [--base IMAGE]``.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_TAG = "dgm-grade:latest"
DEFAULT_BASE = "pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime"
OFFLINE_BASE = "dgm-grade-base:offline"
DIGEST_LABEL = "dgm-grade.worker-digest"

DOCKER_DIR = Path(__file__).resolve().parent / "docker"  # package data: works from an installed wheel
WORKER_DIR = Path(__file__).resolve().parents[1] / "worker"


TORCH_PIN = "2.13.0"  # pyproject.toml's torch==; the image gets the judge's own version when torch is installed


def judge_torch_version() -> str:
    """The torch version the judge runs (without a local label such as +cpu), else TORCH_PIN."""
    from importlib import metadata

    try:
        return metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:  # the CI script's bare system python
        return TORCH_PIN


def worker_files() -> list[Path]:
    """The worker package's files (grader/worker, recursively), without byte code."""
    return sorted(
        p for p in WORKER_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def worker_digest() -> str:
    """sha256 over the worker package's file paths and contents (first 16 hex digits)."""
    h = hashlib.sha256()
    for path in worker_files():
        h.update(path.relative_to(WORKER_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_image(*, base: str | None = None, tag: str = DEFAULT_TAG, offline: bool = False, quiet: bool = False) -> str:
    """Build the grading image and return its tag.

    offline: first make ``base`` (default dgm-grade-base:offline) with
    docker/build-offline-base.sh (skipped when it exists), then build with
    the network off. Otherwise ``base`` (default the CUDA PyTorch runtime) is
    pulled when missing.
    """
    import docker  # the Docker SDK for Python

    if not hasattr(docker, "APIClient"):  # the repository's docker/ folder, not the SDK
        raise RuntimeError("the Docker SDK for Python is not installed (pip install docker)")

    dockerfile = DOCKER_DIR / "Dockerfile"
    if not dockerfile.is_file():
        raise FileNotFoundError(f"{dockerfile} not found: this installation of dgm-grade lacks its package data")
    if offline:
        base = base or OFFLINE_BASE
        subprocess.run(["bash", str(DOCKER_DIR / "build-offline-base.sh"), base], check=True)
    base = base or DEFAULT_BASE
    api = docker.from_env(version="auto", timeout=3600).api  # DOCKER_HOST etc. as the CLI
    with tempfile.TemporaryDirectory(prefix="dgm-image-") as tmp:
        context = Path(tmp)
        shutil.copy(dockerfile, context / "Dockerfile")
        (context / "docker").mkdir()
        shutil.copy(DOCKER_DIR / "student-requirements.txt", context / "docker" / "student-requirements.txt")
        for path in worker_files():
            target = context / "grader" / "worker" / path.relative_to(WORKER_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        stream = api.build(
            path=str(context),
            tag=tag,
            buildargs={"BASE_IMAGE": base, "WORKER_DIGEST": worker_digest(), "TORCH_VERSION": judge_torch_version()},
            network_mode="none" if offline else None,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise RuntimeError(f"docker build failed: {chunk['error'].strip()}")
            if not quiet and chunk.get("stream"):
                sys.stderr.write(chunk["stream"])
    return tag


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grader.deploy.image", description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=None, help=f"base image (default {DEFAULT_BASE}, or {OFFLINE_BASE} with --offline)")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument("--offline", action="store_true", help="no registry: build the base from Debian packages")
    parser.add_argument("-q", "--quiet", action="store_true", help="no docker build output")
    args = parser.parse_args(argv)
    print(build_image(base=args.base, tag=args.tag, offline=args.offline, quiet=args.quiet))


if __name__ == "__main__":
    main()
