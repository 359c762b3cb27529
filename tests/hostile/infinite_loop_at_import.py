"""An infinite loop at import: one import timeout, then every check fails at once."""
import math

import torch


def log_mean_exp(x, dim):
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


while True:
    pass
