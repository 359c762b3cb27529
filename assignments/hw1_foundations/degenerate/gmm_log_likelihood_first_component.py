"""Degenerate gmm_log_likelihood: the first component's log-density, weights ignored.

Right for K = 1 and for identical components (gmm_one_component_limits,
gmm_identical_components), and stable 1e3 away; wrong for any real mixture.
"""
import math

import torch


def gmm_log_likelihood(x, log_weights, means, log_vars):
    mean, log_var = means[0], log_vars[0]
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var)).sum(-1)
