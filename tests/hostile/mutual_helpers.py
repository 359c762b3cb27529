"""A dozen helpers that all name each other, never called: a complete call graph of 12 nodes.

log_mean_exp (wrong) names the first helper; every helper names every other one and
log_bernoulli_with_logits (wrong too). A hint walk that visits every simple path would take
12! (about 5e8) steps per failing check; the judge's walk is linear in the graph. Honest part: 0.
The hint must still name the lowest-level failing function: log_bernoulli_with_logits.
"""
import torch


def log_bernoulli_with_logits(x, logits):  # wrong
    return torch.zeros(x.shape[:-1], dtype=x.dtype)


def log_mean_exp(x, dim):  # wrong, and names the helpers
    if x.numel() < 0:
        return helper_00(x)
    return x.sum(dim)


def helper_00(x):
    never = (helper_01, helper_02, helper_03, helper_04, helper_05, helper_06, helper_07, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_01(x):
    never = (helper_00, helper_02, helper_03, helper_04, helper_05, helper_06, helper_07, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_02(x):
    never = (helper_00, helper_01, helper_03, helper_04, helper_05, helper_06, helper_07, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_03(x):
    never = (helper_00, helper_01, helper_02, helper_04, helper_05, helper_06, helper_07, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_04(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_05, helper_06, helper_07, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_05(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_04, helper_06, helper_07, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_06(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_04, helper_05, helper_07, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_07(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_04, helper_05, helper_06, helper_08, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_08(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_04, helper_05, helper_06, helper_07, helper_09, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_09(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_04, helper_05, helper_06, helper_07, helper_08, helper_10, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_10(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_04, helper_05, helper_06, helper_07, helper_08, helper_09, helper_11, log_bernoulli_with_logits)
    return never[0](x)


def helper_11(x):
    never = (helper_00, helper_01, helper_02, helper_03, helper_04, helper_05, helper_06, helper_07, helper_08, helper_09, helper_10, log_bernoulli_with_logits)
    return never[0](x)
