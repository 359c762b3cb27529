"""An expression 100,000 levels deep (``__DEEP__``: the test puts ``- - - ... 1`` there).

CPython's parser gives up on it with a MemoryError ("parser stack overflow"),
in the judge as in the worker: no Python can import this file. The judge
reads the file itself (to check it is not empty, for hints), so it must say
so plainly rather than fail with an internal error: every check fails with
the reason, results.json is written, `grade` exits 0. Honest part: 0.
"""
import math

import torch


def log_mean_exp(x, dim):  # honest, but the file cannot be imported at all
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


DEEP = __DEEP__
