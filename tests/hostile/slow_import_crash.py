"""A slow import and a crash in every call: each check would cost a worker restart and a slow import.

Each import sleeps 1.5 s (within the import timeout), every function calls os._exit(1). With
no budget, the judge restarts the worker, importing again, for every check (25 minutes for
one submission when the import takes the timeout's 60 s). The test sets the submission's
import budget to 2 s: after the imports it allows, the remaining checks fail at once.
Honest part: 0.
"""
import os
import time

import torch

time.sleep(1.5)


def log_mean_exp(x, dim):
    os._exit(1)


def log_bernoulli_with_logits(x, logits):
    os._exit(1)
