"""Degenerate gmm_em_step: returns its inputs (normalised weights, right shapes and dtype).

The log-likelihood never decreases (it stays the same), the weights stay normalised,
points 1e3 away change nothing, and relabelling/rescaling transform it exactly as EM.
"""


def gmm_em_step(x, log_weights, means, log_vars):
    return log_weights.clone(), means.clone(), log_vars.clone()
