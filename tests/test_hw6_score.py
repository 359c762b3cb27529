"""hw6_score: realistic bugs lose points on their function; chains and the training check report the student's error.

Bug variants grade only the checks of the buggy function (fast: stop at the
first failure, no shrinking), and must lose points on a check named after it.
"""
from __future__ import annotations

import pytest

from conftest import ROOT, failed, grade_source, mutate, reference_source
from grader.api import make_sandbox
from grader.assignment import load_assignment
from grader.judge import grade
from grader.submission import submission_from_bytes

AID = "hw6_score"
MODULE = "score"
SCORE = reference_source(MODULE)


def SLOW(*bug):
    """A bug variant run only with the slow tests (keeps the default run short)."""
    return pytest.param(*bug, marks=pytest.mark.slow, id=bug[0])


# Realistic student bugs: (bug, buggy function, text in the reference, replacement).
BUGS = [
    ("dsm target with the wrong sign", "dsm_loss",
     "residual = score_fn(x_tilde, sigma) + noise / sigma_b", "residual = score_fn(x_tilde, sigma) - noise / sigma_b"),
    SLOW("dsm averaged over dims instead of summed", "dsm_loss",
     "return 0.5 * (residual ** 2).reshape(batch, -1).sum(dim=1).mean()", "return 0.5 * (residual ** 2).mean()"),
    ("dsm score of the clean data", "dsm_loss", "residual = score_fn(x_tilde, sigma)", "residual = score_fn(x, sigma)"),
    SLOW("dsm per-example sigma not reshaped", "dsm_loss",
     "sigma_b = sigma.to(dtype=x.dtype, device=x.device).reshape((-1,) + (1,) * (x.dim() - 1))",
     "sigma_b = sigma.to(dtype=x.dtype, device=x.device)"),
    SLOW("dsm weighted by sigma^2 (NCSN weighting)", "dsm_loss",
     "return 0.5 * (residual ** 2).reshape(batch, -1).sum(dim=1).mean()",
     "return 0.5 * (torch.as_tensor(sigma_b) ** 2 * residual ** 2).reshape(batch, -1).sum(dim=1).mean()"),
    ("ssm without create_graph", "sliced_score_matching_loss", "x, create_graph=True)", "x, create_graph=False)"),
    ("ssm without the 1/2", "sliced_score_matching_loss", "(vjv + 0.5 * vs ** 2)", "(vjv + vs ** 2)"),
    SLOW("ssm trace term not projected on v", "sliced_score_matching_loss",
     "vjv = (v * grad_vs).reshape(batch, -1).sum(dim=1)", "vjv = grad_vs.reshape(batch, -1).sum(dim=1)"),
    ("langevin with the step / 2 convention", "langevin_step",
     "return x + step_size * score_fn(x, sigma) + (2.0 * step_size) ** 0.5 * noise",
     "return x + 0.5 * step_size * score_fn(x, sigma) + step_size ** 0.5 * noise"),
    SLOW("langevin noise sqrt(step)", "langevin_step", "(2.0 * step_size) ** 0.5", "step_size ** 0.5"),
    SLOW("langevin ignores sigma", "langevin_step", "return x + step_size * score_fn(x, sigma)",
     "return x + step_size * score_fn(x, None)"),
    SLOW("langevin kick hard-coded for step 0.5", "langevin_step", "(2.0 * step_size) ** 0.5 * noise", "noise"),
    ("marginal with 0.5 t^2", "vp_sde_marginal", "-0.25 * t ** 2", "-0.5 * t ** 2"),
    ("marginal std without the factor 2", "vp_sde_marginal",
     "std = torch.sqrt(-torch.expm1(2.0 * log_mean_coeff))", "std = torch.sqrt(-torch.expm1(log_mean_coeff))"),
    SLOW("marginal std is the variance", "vp_sde_marginal",
     "std = torch.sqrt(-torch.expm1(2.0 * log_mean_coeff))", "std = -torch.expm1(2.0 * log_mean_coeff)"),
    SLOW("marginal returns the schedule's dtype", "vp_sde_marginal",
     "mean_coeff = torch.exp(log_mean_coeff).to(x0.dtype).reshape(shape)",
     "mean_coeff = torch.exp(log_mean_coeff).double().reshape(shape)"),
    ("reverse step with the forward score sign", "reverse_sde_step",
     "(drift - beta * score) * dt", "(drift + beta * score) * dt"),
    ("reverse step noise scaled by dt", "reverse_sde_step",
     "torch.sqrt(beta * dt) * noise", "torch.sqrt(beta) * dt * noise"),
    SLOW("reverse step score at t - dt", "reverse_sde_step", "score = score_fn(x, t)", "score = score_fn(x, t - dt)"),
    SLOW("reverse step ignores the betas it is passed", "reverse_sde_step",
     "beta = beta_min + t_b * (beta_max - beta_min)\n    drift", "beta = 0.1 + t_b * 19.9\n    drift"),
    SLOW("reverse step with g instead of g^2", "reverse_sde_step",
     "(drift - beta * score) * dt", "(drift - torch.sqrt(beta) * score) * dt"),
    ("probability flow without the 1/2 on the score", "probability_flow_drift",
     "return -0.5 * beta * x - 0.5 * beta * score_fn(x, t)", "return -0.5 * beta * x - beta * score_fn(x, t)"),
    SLOW("probability flow with beta(t) = beta_max t", "probability_flow_drift",
     "beta = beta_min + t_b * (beta_max - beta_min)\n    return -0.5", "beta = t_b * beta_max\n    return -0.5"),
    ("cd backpropagates into negatives", "contrastive_divergence_loss", "energy_fn(x_neg.detach())",
     "energy_fn(x_neg)"),
    ("cd detaches the negative energy", "contrastive_divergence_loss", "energy_fn(x_neg.detach()).mean()",
     "energy_fn(x_neg).mean().detach()"),
    SLOW("cd with the sign swapped", "contrastive_divergence_loss",
     "return energy_fn(x_pos).mean() - energy_fn(x_neg.detach()).mean()",
     "return energy_fn(x_neg.detach()).mean() - energy_fn(x_pos).mean()"),
]


@pytest.mark.parametrize("bug,function,old,new", BUGS, ids=[b.id if hasattr(b, "marks") else b[0] for b in BUGS])
def test_bug_loses_points_on_a_check_of_the_buggy_function(bug, function, old, new):
    g = grade_source(AID, mutate(SCORE, old, new), functions=(function,), fast=True)
    lost = failed(g)
    assert lost, f"{bug}: no check failed"
    assert lost[0].startswith(f"{function}: "), lost


def test_chain_checks_report_the_students_error():
    """The chains run in the worker: a step returning the wrong shape fails with a message naming the step."""
    source = mutate(SCORE, "return x + step_size * score_fn(x, sigma) + (2.0 * step_size) ** 0.5 * noise",
                    "return (x + step_size * score_fn(x, sigma) + (2.0 * step_size) ** 0.5 * noise)[:, :1]")
    assignment = load_assignment(AID, hidden=False)
    check = next(c for c in assignment.checks if c.id == "langevin_chain_stationary")
    g = grade(assignment, submission_from_bytes(source.encode(), MODULE),
              sandbox=make_sandbox(assignment, kind="process"), checks=[check])
    assert not g.results[0].passed
    assert "langevin_step returned a tensor of shape" in g.results[0].output and "step 0" in g.results[0].output


@pytest.mark.slow
def test_training_check_rejects_a_wrong_target():
    """A DSM loss with the target's sign flipped trains a useless score model."""
    source = mutate(SCORE, "residual = score_fn(x_tilde, sigma) + noise / sigma_b",
                    "residual = score_fn(x_tilde, sigma) - noise / sigma_b")
    assignment = load_assignment(AID)
    check = next(c for c in assignment.checks if c.id == "trains_score_model")
    g = grade(assignment, submission_from_bytes(source.encode(), MODULE),
              sandbox=make_sandbox(assignment, kind="process"), checks=[check])
    assert not g.results[0].passed and "relative error" in g.results[0].output


@pytest.mark.slow
def test_examples_grade_as_documented():
    """examples/hw6_score: correct.py full marks; partly_wrong.py loses points on its three buggy
    functions only; broken.ipynb still imports and loses only sliced_score_matching_loss."""
    def lost(name):
        g = grade_source(AID, ROOT / "examples" / AID / name, hidden=False)
        return {r.check.function for r in g.results if not r.passed}

    assert lost("correct.py") == set()
    assert lost("partly_wrong.py") == {"langevin_step", "reverse_sde_step", "contrastive_divergence_loss"}
    assert lost("broken.ipynb") == {"sliced_score_matching_loss"}
