"""A plausible student submission with three bugs: the covariance uses torch.cov (which
divides by N - 1), the mixture log-likelihood exponentiates the densities before summing
(-inf for points far from every component), and the EM variances are taken around the
old means instead of the new ones."""
import math

import torch


def box_muller(u1, u2):
    r = torch.sqrt(-2 * torch.log(u1))
    return r * torch.cos(2 * math.pi * u2), r * torch.sin(2 * math.pi * u2)


def gaussian_mle(x):
    return x.mean(0), torch.cov(x.T).reshape(x.shape[1], x.shape[1])


def diag_gaussian_log_prob(x, mean, log_var):
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 / torch.exp(log_var)).sum(-1)


def gmm_log_likelihood(x, log_weights, means, log_vars):
    dens = torch.exp(log_weights + diag_gaussian_log_prob(x[:, None], means, log_vars))
    return torch.log(dens.sum(-1))


def gmm_em_step(x, log_weights, means, log_vars):
    log_joint = log_weights + diag_gaussian_log_prob(x[:, None], means, log_vars)
    resp = torch.exp(log_joint - torch.logsumexp(log_joint, 1, keepdim=True))
    nk = resp.sum(0)
    new_means = resp.T @ x / nk[:, None]
    new_vars = (resp[:, :, None] * (x[:, None] - means) ** 2).sum(0) / nk[:, None]
    return torch.log(nk / len(x)), new_means, torch.log(new_vars)
