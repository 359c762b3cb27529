# kl_normal right only when p is the standard normal (the only p negative_elbo_bound uses): ignores p.
def kl_normal(q_mean, q_log_var, p_mean, p_log_var):
    return 0.5 * (q_mean ** 2 + torch.exp(q_log_var) - 1.0 - q_log_var).sum(-1) + 0 * (p_mean + p_log_var).sum(-1)
