"""hw4_gan: realistic bugs lose points on their function, and failures say what to fix."""
from __future__ import annotations

import pytest

from conftest import ROOT, failed, grade_source, mutate, reference_source
from grader.api import make_sandbox
from grader.assignment import load_assignment
from grader.degenerate import defined_names, with_fragment
from grader.judge import grade
from grader.submission import submission_from_bytes

GAN = reference_source("gan")


# Realistic student bugs: (bug, buggy function, text in the reference, replacement).
BUGS = [
    ("minimax with log(sigmoid) and log(1 - sigmoid)", "d_loss_minimax",
     "return -F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean()",
     "return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()"),
    ("minimax fake term as log D instead of log(1 - D)", "d_loss_minimax",
     "return -F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean()",
     "return -F.logsigmoid(real_logits).mean() - F.logsigmoid(fake_logits).mean()"),
    ("minimax with both batches concatenated", "d_loss_minimax",
     "return -F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean()",
     "return -torch.cat([F.logsigmoid(real_logits).flatten(), F.logsigmoid(-fake_logits).flatten()]).mean()"),
    ("saturating loss written as the non-saturating one", "g_loss_minimax",
     "return F.logsigmoid(-fake_logits).mean()", "return -F.logsigmoid(fake_logits).mean()"),
    ("saturating loss with the discriminator's sign", "g_loss_minimax",
     "return F.logsigmoid(-fake_logits).mean()", "return -F.logsigmoid(-fake_logits).mean()"),
    ("non-saturating loss with an epsilon in the log", "g_loss_nonsaturating",
     "return -F.logsigmoid(fake_logits).mean()", "return -torch.log(torch.sigmoid(fake_logits) + 1e-8).mean()"),
    ("LSGAN without the 1/2", "d_loss_lsgan",
     "return 0.5 * ((real_out - 1.0) ** 2).mean() + 0.5 * (fake_out ** 2).mean()",
     "return ((real_out - 1.0) ** 2).mean() + (fake_out ** 2).mean()"),
    ("LSGAN targets swapped", "d_loss_lsgan",
     "return 0.5 * ((real_out - 1.0) ** 2).mean() + 0.5 * (fake_out ** 2).mean()",
     "return 0.5 * (real_out ** 2).mean() + 0.5 * ((fake_out - 1.0) ** 2).mean()"),
    ("LSGAN generator target 0", "g_loss_lsgan",
     "return 0.5 * ((fake_out - 1.0) ** 2).mean()", "return 0.5 * (fake_out ** 2).mean()"),
    ("WGAN critic loss with the sign flipped", "d_loss_wgan",
     "return fake_out.mean() - real_out.mean()", "return real_out.mean() - fake_out.mean()"),
    ("WGAN generator loss summed over the batch", "g_loss_wgan",
     "return -fake_out.mean()", "return -fake_out.sum()"),
    ("gradient penalty without create_graph", "gradient_penalty",
     "create_graph=True)", "create_graph=False)"),
    ("gradient norm over dim 1 only", "gradient_penalty",
     "torch.linalg.vector_norm(grad.reshape(batch, -1), dim=1)", "grad.norm(2, dim=1)"),
    ("real and fake swapped in the interpolation", "gradient_penalty",
     "x_hat = alpha * real + (1.0 - alpha) * fake", "x_hat = alpha * fake + (1.0 - alpha) * real"),
    ("gradient of the batch mean", "gradient_penalty",
     "torch.autograd.grad(out.sum(), x_hat", "torch.autograd.grad(out.mean(), x_hat"),
    ("penalising the squared norm", "gradient_penalty",
     "return ((grad_norm - 1.0) ** 2).mean()", "return (grad_norm ** 2).mean()"),
    ("alpha not reshaped for broadcasting", "gradient_penalty",
     "alpha = alpha.reshape(batch, *([1] * (real.dim() - 1)))", "alpha = alpha"),
    ("squared cycle error", "cycle_consistency_loss",
     "forward_cycle = (F(G(x)) - x).abs().mean()", "forward_cycle = ((F(G(x)) - x) ** 2).mean()"),
    ("maps composed in the wrong order", "cycle_consistency_loss",
     "forward_cycle = (F(G(x)) - x).abs().mean()", "forward_cycle = (G(F(x)) - x).abs().mean()"),
    ("backward cycle with F detached", "cycle_consistency_loss",
     "backward_cycle = (G(F(y)) - y).abs().mean()", "backward_cycle = (G(F(y).detach()) - y).abs().mean()"),
    ("only the forward cycle", "cycle_consistency_loss",
     "return forward_cycle + backward_cycle", "return forward_cycle"),
]


@pytest.mark.parametrize("bug,function,old,new", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points_on_a_check_of_the_buggy_function(bug, function, old, new):
    grade = grade_source("hw4_gan", mutate(GAN, old, new), functions=(function,), fast=True)
    lost = failed(grade)
    assert lost, f"{bug}: no check failed"
    assert lost[0].startswith(f"{function}: "), lost


def test_failure_feedback_names_function_property_counterexample_and_values():
    source = mutate(GAN, "return 0.5 * ((fake_out - 1.0) ** 2).mean()", "return 0.5 * (fake_out ** 2).mean()")
    grade = grade_source("hw4_gan", source, functions=("g_loss_lsgan",), hidden=False)
    bad = next(r for r in grade.results if not r.passed)
    assert bad.check.name.startswith("g_loss_lsgan: ")
    assert "got" in bad.output and "expected" in bad.output and "Counterexample" in bad.output
    assert "\n  fake_out = tensor(" in bad.output  # the counterexample names what each draw is
    assert '"0.5 E (D(G(z)) - 1)^2"' in bad.output  # and the message quotes the handout's definition


SPECIAL_CASE_ANSWERS = ("oracle_only", "symmetries_only", "penalty_unit_critic", "cycle_inverse_only")


def test_special_case_answers_earn_nothing_from_the_public_checks():
    """Right only at D*, only with the symmetries, only for unit-norm critics, only for F = G^-1: every public
    check they pass is gated by the hidden value pins (no public check pins these one-line definitions: the
    gradient checks compare with the code's own values), so they earn no public point under `grade`."""
    folder = ROOT / "assignments" / "hw4_gan" / "degenerate"
    fragments = [(folder / f"{name}.py").read_text() for name in SPECIAL_CASE_ANSWERS]
    functions = {n for f in fragments for n in defined_names(f) if not n.startswith("_")}
    source = GAN
    for fragment in fragments:
        source = with_fragment(source, fragment)
    assignment = load_assignment("hw4_gan")
    result = grade(assignment, submission_from_bytes(source.encode(), "gan"),
                   sandbox=make_sandbox(assignment, kind="process"),
                   checks=[c for c in assignment.checks if c.function in functions], shrink=False)
    earned = {r.check.name: r.score for r in result.results if r.score and not r.check.hidden}
    assert not earned, earned
    assert {r.check.function for r in result.results if r.gated_by} == functions  # each passes a special case
