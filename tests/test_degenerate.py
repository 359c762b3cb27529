"""Degenerate answers for validate (grader/degenerate.py): right structure, wrong values, graph kept."""
from __future__ import annotations

import types

import torch

from conftest import reference_source
from grader.degenerate import KINDS, defined_names, generated, with_fragment


def load(source: str) -> types.ModuleType:
    module = types.ModuleType("degenerate_vae")
    exec(compile(source, "vae.py", "exec"), module.__dict__)
    return module


def test_generated_answers_keep_structure_and_graph_and_only_the_values_are_degenerate():
    ref = reference_source("vae")
    mean = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    log_var = torch.randn(4, 3, dtype=torch.float64)
    outputs = {kind: load(generated(ref, ["kl_normal", "sample_gaussian"], kind)) for kind in KINDS}
    zeros = outputs["zeros"].kl_normal(mean, log_var, mean * 0, log_var * 0)
    assert zeros.shape == (4,) and zeros.dtype == torch.float64 and torch.equal(zeros, torch.zeros(4, dtype=torch.float64))
    zeros.sum().backward()  # the graph is kept: "a gradient reaches the input" holds, with value 0
    assert torch.equal(mean.grad, torch.zeros_like(mean))
    assert torch.equal(outputs["ones"].sample_gaussian(mean, log_var), torch.ones(4, 3, dtype=torch.float64))
    assert torch.equal(outputs["echo"].sample_gaussian(mean, log_var), mean)  # z = mean: an echo of an input


def test_echo_of_a_coupling_is_the_identity_with_zero_log_det():
    flows = load(generated(reference_source("flows"), ["AffineCoupling"], "echo"))
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    net = torch.nn.Linear(4, 8)
    x = torch.randn(5, 4)
    y, log_det = flows.AffineCoupling(mask, net).forward(x)
    assert torch.equal(y, x) and torch.equal(log_det, torch.zeros(5))


def test_fragments_replace_only_what_they_define():
    fragment = "def log_mean_exp(x, dim):\n    return x.mean(dim)\n"
    assert defined_names(fragment) == ["log_mean_exp"]
    module = load(with_fragment(reference_source("vae"), fragment))
    x = torch.tensor([[0.0, 2.0]])
    assert torch.equal(module.log_mean_exp(x, 1), torch.tensor([1.0]))
    assert module.kl_normal(x, x, x, x).item() == 0.0  # the rest is the reference


def test_a_fragments_private_helpers_are_not_graded_functions():
    fragment = "def _kl(a, b):\n    return a - b\n\n\nclass _Cache:\n    pass\n\n\ndef kl_normal(qm, qv, pm, pv):\n    return _kl(qm, pm).sum(-1)\n"
    assert defined_names(fragment) == ["kl_normal"]
