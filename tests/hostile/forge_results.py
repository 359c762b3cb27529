"""Writes a forged, full-marks results.json everywhere it might count; every function is wrong.

Targets: its cwd, /tmp, /var/tmp, /dev/shm, next to the judge's --out path
(including the fixed `.tmp` name an older judge used, as a symlink to the
--out path's victim) and the --out path itself. Honest part: 0.
"""
import json
import os

import torch

OUT = "__OUT__"
FORGED = json.dumps({"score": 1000.0, "execution_time": 0.0, "output": "__MARKER__", "tests": [],
                     "extra_data": {"forged": "__MARKER__"}})
written = []


def forge():
    out_dir = os.path.dirname(OUT)
    for path in ("results.json", "/tmp/results.json", "/var/tmp/results.json", "/dev/shm/results.json",
                 OUT, OUT + ".tmp", os.path.join(out_dir, "forged-__MARKER__.json"),
                 "/autograder/results/results.json"):
        try:
            with open(path, "w") as f:
                f.write(FORGED)
            written.append(path)
        except OSError:
            pass
    try:  # an older judge wrote OUT + ".tmp" then renamed it: point that name somewhere else
        os.symlink("/etc/dgm-hostile-__MARKER__", OUT + ".tmp")
        written.append("symlink " + OUT + ".tmp")
    except OSError:
        pass


forge()


def log_mean_exp(x, dim):
    forge()
    print("forged:", sorted(set(written)))
    return torch.zeros_like(x).sum(dim)
