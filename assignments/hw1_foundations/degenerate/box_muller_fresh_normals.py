"""Degenerate box_muller: ignores u1 and u2 and returns fresh standard normals.

Right distribution, wrong function: passes the KS and correlation tests of
bm_distribution, and nothing that looks at the given uniforms.
"""
import torch


def box_muller(u1, u2):
    return torch.randn_like(u1), torch.randn_like(u2)
