"""The vae.py inside three zip bombs the test builds around it (tests/test_hostile.py, zip_of):

- gigabytes: beside it, data.bin, a deflate stream of 2 MiB that expands to 2 GiB of zeros;
- lying size: the same, its headers saying 1000 bytes (zipfile stops there, at a bad CRC);
- 100k files: beside it, 100,000 empty files under __MACOSX/ (entries the loader skips, but
  zipfile parses every one when it opens the archive: 10^6 of them took 40 s and 1 GB).
The judge refuses each before grading, with the reason, and writes results.json.
Honest part: log_mean_exp is correct, but a submission that cannot be loaded scores 0.
"""
import math

import torch


def log_mean_exp(x, dim):  # honest
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])
