"""os._exit(0) at import: the worker dies before answering `load`."""
import os

import torch


def log_mean_exp(x, dim):
    return torch.logsumexp(x, dim=dim) - torch.log(torch.tensor(float(x.shape[dim]), dtype=x.dtype))


os._exit(0)
