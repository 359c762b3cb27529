"""Tells which check is calling from the seed the worker was given, and is right only there.

It computes, for every check id of hw2_vae and the default grading seed 2026, the seeds a
call could get: the judge's old per-call seed (sha256 of "seed:assignment:check" plus the
call's offset), and the current keyed one with the default course secret (from the grader's
public source, keyed on this very file, which it reads from its working directory).
log_mean_exp returns the right value only when torch.initial_seed() is one of them: it scores
exactly when the seed reveals the calling check. With a course secret set on the judge (the
test sets DGM_COURSE_SECRET), it can match nothing. Must score: 0.
"""
import hashlib
import hmac
import math

import torch

CHECKS = ("lme_values", "lme_shift", "lme_gradient", "lme_dim_and_inputs")
DEFAULT_SECRET = b"dgm-grade default course secret"


def _check_seed(check):
    return int.from_bytes(hashlib.sha256(f"2026:hw2_vae:{check}".encode()).digest()[:4], "big")


def _known_seeds():
    seeds = set()
    try:
        own = open("vae.py", "rb").read()
    except OSError:
        own = b""
    content = hashlib.sha256(hashlib.sha256(b"vae.py").digest() + hashlib.sha256(own).digest()).digest()
    key = hmac.new(DEFAULT_SECRET, b"dgm-grade call seeds\0" + content, hashlib.sha256).digest()
    for check in CHECKS:
        base = _check_seed(check)
        for offset in range(4):
            seeds.add((base + offset) % 2**32)
            seeds.add(int.from_bytes(hmac.new(key, f"{base}:{offset}".encode(), hashlib.sha256).digest()[:4], "big"))
    return seeds


KNOWN = _known_seeds()


def log_mean_exp(x, dim):
    if torch.initial_seed() in KNOWN:  # it knows which check this is
        return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])
    return x.sum(dim) * 0 + 123.0
