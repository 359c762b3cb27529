"""hw5_diffusion: realistic bugs lose points on their function; the training check rejects a wrong target.

Bug variants grade only the checks of the buggy function (fast: stop at the
first failure, no shrinking), and must lose points on a check named after it.
"""
from __future__ import annotations

import pytest

from conftest import failed, grade_source, mutate, reference_source
from grader.api import make_sandbox
from grader.assignment import load_assignment
from grader.judge import grade
from grader.submission import submission_from_bytes

AID = "hw5_diffusion"
MODULE = "diffusion"


# (name, function, old, new): one realistic bug each
BUGS = [
    ("linspace_off_by_one", "linear_beta_schedule",
     "return torch.linspace(beta_start, beta_end, T, dtype=torch.get_default_dtype())",
     "return beta_start + (beta_end - beta_start) * torch.arange(T, dtype=torch.get_default_dtype()) / T"),
    ("cosine_not_clipped", "cosine_beta_schedule",
     "return betas.clamp(max=max_beta).to(torch.get_default_dtype())",
     "return betas.to(torch.get_default_dtype())"),
    ("cosine_always_float64", "cosine_beta_schedule",
     "return betas.clamp(max=max_beta).to(torch.get_default_dtype())",
     "return betas.clamp(max=max_beta)"),
    ("q_sample_no_sqrt", "q_sample",
     "sqrt_ab = torch.sqrt(ab).to(x0.dtype).reshape(shape)",
     "sqrt_ab = ab.to(x0.dtype).reshape(shape)"),
    ("q_sample_vectors_only", "q_sample",
     "sqrt_ab = torch.sqrt(ab).to(x0.dtype).reshape(shape)\n    sqrt_one_minus_ab = torch.sqrt(1.0 - ab).to(x0.dtype).reshape(shape)",
     "sqrt_ab = torch.sqrt(ab).to(x0.dtype)[:, None]\n    sqrt_one_minus_ab = torch.sqrt(1.0 - ab).to(x0.dtype)[:, None]"),
    ("posterior_wraps_at_t0", "q_posterior_mean_variance",
     "    coef_x0 = torch.where(first, torch.ones_like(coef_x0), coef_x0)\n"
     "    coef_xt = torch.where(first, torch.zeros_like(coef_xt), coef_xt)\n"
     "    var = torch.where(first, torch.zeros_like(var), var)\n",
     "    ab_prev = alpha_bars[t - 1]  # t == 0 reads the last entry\n"
     "    coef_x0 = torch.sqrt(ab_prev) * beta_t / (1.0 - ab_t)\n"
     "    coef_xt = torch.sqrt(1.0 - beta_t) * (1.0 - ab_prev) / (1.0 - ab_t)\n"
     "    var = beta_t * (1.0 - ab_prev) / (1.0 - ab_t)\n"),
    ("posterior_swapped_coefficients", "q_posterior_mean_variance",
     "mean = coef_x0 * x0 + coef_xt * x_t", "mean = coef_xt * x0 + coef_x0 * x_t"),
    ("x0_hat_times_sqrt_ab", "predict_x0_from_noise",
     "return (x_t - sqrt_one_minus_ab * noise) / sqrt_ab", "return (x_t - sqrt_one_minus_ab * noise) * sqrt_ab"),
    ("loss_sums", "noise_prediction_loss",
     "return ((noise - model(x_t, t)) ** 2).mean()", "return ((noise - model(x_t, t)) ** 2).sum()"),
    ("loss_model_sees_x0", "noise_prediction_loss",
     "return ((noise - model(x_t, t)) ** 2).mean()", "return ((noise - model(x0, t)) ** 2).mean()"),
    ("p_sample_beta_variance", "p_sample_step",
     "var = torch.where(first, torch.zeros_like(beta_t), beta_t * (1.0 - ab_prev) / (1.0 - ab_t))",
     "var = torch.where(first, torch.zeros_like(beta_t), beta_t)"),
    ("p_sample_noise_at_t0", "p_sample_step",
     "var = torch.where(first, torch.zeros_like(beta_t), beta_t * (1.0 - ab_prev) / (1.0 - ab_t))",
     "var = beta_t * (1.0 - alpha_bars[t - 1]) / (1.0 - ab_t)"),
    ("ddim_t_prev_wraps", "ddim_step",
     "a_prev = torch.where(t_prev >= 0, alpha_bars[t_prev.clamp(min=0)], torch.ones_like(a))",
     "a_prev = alpha_bars[t_prev]"),
    ("ddim_sigma_squared_eta", "ddim_step",
     "sigma = eta * torch.sqrt((1.0 - a_prev) / (1.0 - a)) * torch.sqrt(1.0 - a / a_prev)",
     "sigma = eta * (1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev)"),
    ("cfg_wrong_base", "classifier_free_guidance",
     "return eps_uncond + w * (eps_cond - eps_uncond)", "return eps_cond + w * (eps_cond - eps_uncond)"),
    ("cfg_w_not_reshaped", "classifier_free_guidance",
     "w = w.reshape((-1,) + (1,) * (eps_cond.dim() - 1))", "w = w[:, None]"),
    ("threshold_not_clipped_at_1", "dynamic_threshold",
     "s = torch.quantile(flat, percentile, dim=1).clamp(min=1.0).reshape(shape)",
     "s = torch.quantile(flat, percentile, dim=1).reshape(shape)"),
    ("threshold_over_whole_batch", "dynamic_threshold",
     "s = torch.quantile(flat, percentile, dim=1).clamp(min=1.0).reshape(shape)",
     "s = torch.quantile(flat.flatten(), percentile).clamp(min=1.0)"),
    ("inpaint_mask_reversed", "inpaint_merge",
     "return (mask * known + (1.0 - mask) * x_prev).to(x_prev.dtype)",
     "return ((1.0 - mask) * known + mask * x_prev).to(x_prev.dtype)"),
    ("inpaint_start_wraps", "inpaint_merge",
     "noised = q_sample(y, t_prev.clamp(min=0), noise, alpha_bars)\n"
     "    known = torch.where((t_prev == -1).reshape(shape), y, noised)",
     "known = q_sample(y, t_prev, noise, alpha_bars)"),
    # special cases and hidden directions (issue 9): each must cost its own function
    ("ddim_ignores_eta", "ddim_step",
     "sigma = eta * torch.sqrt((1.0 - a_prev) / (1.0 - a)) * torch.sqrt(1.0 - a / a_prev)",
     "sigma = 0.0 * torch.sqrt((1.0 - a_prev) / (1.0 - a)) * torch.sqrt(1.0 - a / a_prev)"),
    ("ddim_x0_hat_detached", "ddim_step",
     "x0_hat = (x_t - sqrt_one_minus_a * eps) / sqrt_a",
     "x0_hat = ((x_t - sqrt_one_minus_a * eps) / sqrt_a).detach()"),
    ("p_sample_no_noise", "p_sample_step", "return mean + std * noise", "return mean"),
    ("threshold_s_detached", "dynamic_threshold",
     "s = torch.quantile(flat, percentile, dim=1).clamp(min=1.0).reshape(shape)",
     "s = torch.quantile(flat, percentile, dim=1).clamp(min=1.0).reshape(shape).detach()"),
    ("inpaint_known_not_noised", "inpaint_merge",
     "known = torch.where((t_prev == -1).reshape(shape), y, noised)", "known = y"),
]


# graded only in slow runs, to keep the default test run short
SLOW_BUGS = {"cosine_always_float64", "q_sample_no_sqrt", "posterior_swapped_coefficients", "loss_sums",
             "cfg_wrong_base", "inpaint_mask_reversed", "p_sample_no_noise", "inpaint_known_not_noised"}


@pytest.mark.parametrize("bug,function,old,new", [
    pytest.param(*b, id=b[0], marks=[pytest.mark.slow] if b[0] in SLOW_BUGS else []) for b in BUGS])
def test_bug_loses_points_on_its_function(bug, function, old, new):
    source = mutate(reference_source(MODULE), old, new)
    g = grade_source(AID, source, functions=(function,), fast=True)
    lost = failed(g)
    assert g.score < g.max_score, f"{bug}: not detected"
    assert any(n.startswith(function + ":") for n in lost), lost


def test_special_cases_score_only_with_the_value_pin():
    """A DDIM step that forgets sigma (eta ignored) still passes the eta = 0 and t_prev = -1 checks and the
    gradient check; they score only when the step's value pin passes, so the function earns nothing."""
    source = mutate(reference_source(MODULE),
                    "sigma = eta * torch.sqrt((1.0 - a_prev) / (1.0 - a)) * torch.sqrt(1.0 - a / a_prev)",
                    "sigma = 0.0 * torch.sqrt((1.0 - a_prev) / (1.0 - a)) * torch.sqrt(1.0 - a / a_prev)")
    assignment = load_assignment(AID)
    g = grade(assignment, submission_from_bytes(source.encode(), MODULE),
              sandbox=make_sandbox(assignment, kind="process"), checks=[c for c in assignment.checks if c.function == "ddim_step"], shrink=False)
    by_id = {r.check.id: r for r in g.results}
    assert g.score == 0, [(r.check.id, r.score) for r in g.results if r.score]
    assert {"ddim_recovers_x0", "ddim_consistent"} <= {i for i, r in by_id.items() if r.gated_by}
    assert not by_id["ddim_matches_reference"].passed


@pytest.mark.slow
def test_training_check_rejects_a_loss_on_x0():
    """A loss regressing x0 instead of the noise trains a useless noise model."""
    source = mutate(reference_source(MODULE), "return ((noise - model(x_t, t)) ** 2).mean()",
                    "return ((x0 - model(x_t, t)) ** 2).mean()")
    g = grade_source(AID, source, functions=("noise_prediction_loss",))
    train = next(r for r in g.results if r.check.id == "training_check")
    assert not train.passed and "MMD" in train.output


def test_a_loss_the_model_cannot_move_fails_the_training_check_at_its_first_step():
    """A loss multiplied by 0 has a gradient, all zeros: the training check says so at step 0 instead of
    running its 800 steps first (the generated degenerate answers of `validate` are such losses)."""
    source = mutate(reference_source(MODULE), "return ((noise - model(x_t, t)) ** 2).mean()",
                    "return 0 * ((noise - model(x_t, t)) ** 2).mean()")
    assignment = load_assignment(AID)
    train = [c for c in assignment.checks if c.id == "training_check"]
    g = grade(assignment, submission_from_bytes(source.encode(), MODULE), sandbox=make_sandbox(assignment, kind="process"),
              checks=train, shrink=False)
    [r] = g.results
    assert not r.passed and "every gradient is exactly 0 at the first step" in r.output, r.output
