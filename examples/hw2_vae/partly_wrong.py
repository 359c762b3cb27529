"""A plausible student submission with two bugs: the KL lacks its 1/2 factor, and
the IWAE bound averages log-weights (that is the ELBO again, not the IWAE bound)."""
import torch
import torch.nn.functional as F


def kl_normal(q_mean, q_log_var, p_mean, p_log_var):
    return (p_log_var - q_log_var + (q_log_var.exp() + (q_mean - p_mean) ** 2) / p_log_var.exp() - 1).sum(-1)


def sample_gaussian(mean, log_var, eps=None):
    if eps is None:
        eps = torch.randn_like(mean)
    return mean + (0.5 * log_var).exp() * eps


def log_bernoulli_with_logits(x, logits):
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)


def log_mean_exp(x, dim):
    return torch.logsumexp(x, dim) - torch.log(torch.tensor(float(x.shape[dim]), dtype=x.dtype))


def negative_elbo_bound(model, x):
    mean, log_var = model.encode(x)
    z = sample_gaussian(mean, log_var)
    rec = -log_bernoulli_with_logits(x, model.decode(z)).mean()
    kl = kl_normal(mean, log_var, torch.zeros_like(mean), torch.zeros_like(log_var)).mean()
    return kl + rec, kl, rec


def negative_iwae_bound(model, x, k):
    mean, log_var = model.encode(x)
    z = sample_gaussian(mean, log_var, torch.randn(k, *mean.shape, dtype=mean.dtype))
    log_w = (log_bernoulli_with_logits(x, model.decode(z))
             - 0.5 * (z ** 2).sum(-1) + 0.5 * (((z - mean) ** 2) / log_var.exp() + log_var).sum(-1))
    return -log_w.mean(0).mean()
