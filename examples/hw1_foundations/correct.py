"""A correct hw1 submission written differently from the reference: the covariance as an
einsum of outer products, densities through standardised residuals, the mixture table
built one component at a time, and EM responsibilities with torch.softmax."""
import math

import torch

TWO_PI = 2 * math.pi


def box_muller(u1, u2):
    radius = (-2 * u1.log()).sqrt()
    return radius * torch.cos(TWO_PI * u2), radius * torch.sin(TWO_PI * u2)


def gaussian_mle(x):
    mean = x.sum(0) / x.shape[0]
    d = x - mean
    cov = torch.einsum("ni,nj->ij", d, d) / x.shape[0]
    return mean, cov


def diag_gaussian_log_prob(x, mean, log_var):
    z = (x - mean) * torch.exp(-0.5 * log_var)
    return -(0.5 * z * z + 0.5 * log_var + 0.5 * math.log(TWO_PI)).sum(dim=-1)


def gmm_log_likelihood(x, log_weights, means, log_vars):
    table = torch.stack([log_weights[k] + diag_gaussian_log_prob(x, means[k], log_vars[k])
                         for k in range(means.shape[0])], dim=1)
    return torch.logsumexp(table, dim=1)


def gmm_em_step(x, log_weights, means, log_vars):
    table = log_weights + diag_gaussian_log_prob(x.unsqueeze(1), means, log_vars)  # [N, K]
    resp = torch.softmax(table, dim=1)
    counts = resp.sum(0)
    new_means = torch.einsum("nk,nd->kd", resp, x) / counts.unsqueeze(1)
    dev = x.unsqueeze(1) - new_means
    new_vars = torch.einsum("nk,nkd->kd", resp, dev * dev) / counts.unsqueeze(1)
    return torch.log(counts / x.shape[0]), new_means, new_vars.log()
