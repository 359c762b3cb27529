"""Writes its own frames to the protocol pipe (found via /proc/self/fd).

Each function attacks differently (all return wrong values anyway):
- log_mean_exp: a frame with a forged header claiming ok with a full-marks
  looking result for the request id it reads off the worker's stack, then
  garbage bytes;
- log_bernoulli_with_logits: a huge length prefix (2**40 bytes);
- kl_normal: a header nested 100 000 lists deep (the judge's JSON parser
  must not crash);
- sample_gaussian: a well-formed frame answering a wrong request id.
Honest part: 0. (protocol_frames_at_import.py attacks the `load` reply.)
"""
import json
import os
import stat
import struct
import sys

import torch


def pipes():
    """Every pipe this process can write to, except its stdout/stderr capture."""
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
                fds.append(fd)
        except OSError:
            pass
    return fds


def frame(header, blob=b""):
    head = json.dumps(header).encode()
    return b"DGM1" + struct.pack(">I", len(head)) + head + struct.pack(">Q", len(blob)) + blob


def send(data):
    for fd in pipes():
        try:
            os.write(fd, data)
        except OSError:
            pass


def request_id():
    f = sys._getframe()
    while f is not None:
        header = f.f_locals.get("header")
        if isinstance(header, dict) and "id" in header:
            return header["id"]
        f = f.f_back
    return 1




def log_mean_exp(x, dim):
    send(frame({"id": request_id(), "ok": True, "elapsed": 0.0, "result": 0.0, "output": ""}))
    send(b"garbage" * 1000)
    return torch.zeros_like(x).sum(dim)


def log_bernoulli_with_logits(x, logits):
    send(b"DGM1" + struct.pack(">I", 2) + b"{}" + struct.pack(">Q", 1 << 40))
    return x.sum(-1) * 0


def kl_normal(q_mean, q_log_var, p_mean, p_log_var):
    deep = b"[" * 100_000 + b"]" * 100_000
    send(b"DGM1" + struct.pack(">I", len(deep)) + deep + struct.pack(">Q", 0))
    return q_mean.sum(-1) * 0


def sample_gaussian(mean, log_var, eps=None):
    send(frame({"id": request_id() + 1000, "ok": True, "result": 0.0}))
    return mean * 0
