"""Pads log_bernoulli_with_logits' replies with 20,000 tiny tensors the reply never refers to.

At import it wraps the worker's frame writer (dgm_worker.protocol.pack_frame): while the
flag is set, 20,000 one-element tensors join the reply's blob (twice the judge's limit;
fewer than the 100,000 the issue used, so the worker's side stays cheap). Decoding them
costs the judge per tensor (a max-size frame fits 1.7 million: about 50 s and 3 GB);
the judge counts them from the blob's table first and fails that call with the reason.
Honest part: log_mean_exp, 3 points over LME; log_bernoulli_with_logits is correct
but its padded replies must fail.
"""
import math
import sys

import torch

PAD = {"on": False}
_protocol = sys.modules.get("dgm_worker.protocol")
if _protocol is not None:
    _pack = _protocol.pack_frame
    _padding = {f"pad{i}": t for i, t in enumerate(torch.zeros(20_000).unbind())}

    def _padded(header, tensors=None):
        if PAD["on"] and "result" in header:
            PAD["on"] = False
            tensors = {**(tensors or {}), **_padding}
        return _pack(header, tensors)

    _protocol.pack_frame = _padded


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def log_bernoulli_with_logits(x, logits):  # correct, but its reply is padded
    PAD["on"] = True
    return (x * logits - torch.nn.functional.softplus(logits)).sum(-1)
