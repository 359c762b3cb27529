"""Batch throughput: a generated hw2_vae class graded with 1 and N local workers and on Ray.

    .venv/bin/python benchmarks/batch.py --students 40 [--workers 2] [--skip-ray] [--json out.json]

Each configuration grades the same class from scratch into its own folder (process sandbox,
all checks) and reports wall time, submissions per minute, speed-up against one worker, and
for Ray its overhead per task against the local backend at the same parallelism (a local Ray
started here with --workers CPUs). The gradebooks of all configurations must agree (the
seconds column apart): a run whose grades differ is reported as a failure, not a figure.
The figures in docs/batch.md come from this script.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.make_class import make_class  # noqa: E402
from grader import api  # noqa: E402
from grader.batch.gradebook import grades_csv  # noqa: E402


def comparable(records) -> list[list[str]]:
    return [row[:7] + row[8:] for row in csv.reader(io.StringIO(grades_csv(records)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-serial", action="store_true", help="no 1-worker run (the longest)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="dgm-bench-batch-"))
    kinds = make_class(root / "class", args.students, seed=args.seed)
    print(f"class of {len(kinds)} in {root / 'class'}: " +
          ", ".join(f"{k} {list(kinds.values()).count(k)}" for k in sorted(set(kinds.values()))))
    runs: dict[str, dict] = {}
    gradebooks = {}
    configs = ([] if args.skip_serial else [("local x1", "local", 1)]) + [(f"local x{args.workers}", "local",
                                                                          args.workers)]
    if not args.skip_ray:
        configs.append((f"ray x{args.workers}", "ray", args.workers))
    for label, backend, workers in configs:
        if backend == "ray":
            import ray

            started = time.monotonic()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            init_s = time.monotonic() - started
        started = time.monotonic()
        summary = api.run_batch(folder=root / "class", out=root / label.replace(" ", "_"), assignment_id="hw2_vae",
                                sandbox="process", backend=backend, workers=workers)
        wall = time.monotonic() - started
        graded = sum(r.elapsed for r in summary.records)
        runs[label] = {"wall_s": round(wall, 1), "per_minute": round(60 * len(summary.records) / wall, 2),
                       "grading_s": round(graded, 1), "students": len(summary.records), **summary.by_status}
        if backend == "ray":
            runs[label]["ray_init_s"] = round(init_s, 1)
            ray.shutdown()
        gradebooks[label] = comparable(summary.records)
        print(f"{label}: {wall:.0f} s, {runs[label]['per_minute']} submissions/min ({summary.by_status})", flush=True)
    base = runs.get("local x1")
    for label, run in runs.items():
        if base:
            run["speedup_vs_1"] = round(base["wall_s"] / run["wall_s"], 2)
    local_n, ray_n = runs.get(f"local x{args.workers}"), runs.get(f"ray x{args.workers}")
    if local_n and ray_n:
        ray_n["vs_local"] = round(ray_n["wall_s"] / local_n["wall_s"], 3)
        ray_n["overhead_per_task_s"] = round((ray_n["wall_s"] - local_n["wall_s"]) * args.workers / args.students, 2)
    first = next(iter(gradebooks.values()))
    agree = all(g == first for g in gradebooks.values())
    result = {"students": args.students, "workers": args.workers, "runs": runs, "gradebooks_agree": agree,
              "folder": str(root)}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if not agree:
        sys.exit("the configurations gave different gradebooks")


if __name__ == "__main__":
    main()
