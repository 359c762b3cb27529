"""Writes files everywhere outside its own directory it might reach.

/tmp, /var/tmp, /dev/shm, /run/lock, $HOME, the checkout, the session
directory above its cwd, the sessions directory, /work/shared. The judge
relies on none of these, and none of the files may be left on the host.
Then it tries to fill the disk from its own directory (256 MiB in 8 MiB files).
Honest part: 0.
"""
import os

import torch

MARK = "__MARKER__"
PLACES = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", os.environ.get("HOME", "."), "/work/main", "/work",
          "/work/shared", "..", "../runtime", "../runtime/dgm_worker", "/var/lib/dgm-grade/sessions",
          "/var/lib/dgm-grade", "/root", "/etc"]
written = []


def scatter():
    for d in PLACES:
        path = os.path.join(d, f"{MARK}.txt")
        try:
            with open(path, "w") as f:
                f.write(MARK)
            written.append(os.path.abspath(path))
        except OSError:
            pass


scatter()


def fill():
    chunk, total = b"x" * (8 << 20), 0
    for i in range(32):
        try:
            with open(f"fill-{i}.bin", "wb") as f:
                f.write(chunk)
            total += len(chunk)
        except OSError:
            break
    return total >> 20


def log_mean_exp(x, dim):
    scatter()
    print("wrote:", sorted(set(written)))
    print("filled MiB:", fill())
    return torch.zeros_like(x).sum(dim)
