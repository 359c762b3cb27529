"""hw2_vae: realistic bugs, feedback, missing functions, and the submission forms."""
from __future__ import annotations

import ast
import math
import re
import zipfile

import nbformat
import numpy as np
import pytest
import torch

from conftest import ROOT, failed, grade_source, mutate, reference_source

VAE = reference_source("vae")
HW2 = ROOT / "assignments" / "hw2_vae"


# Realistic student bugs: (bug, buggy function, text in the reference, replacement).
BUGS = [
    ("kl missing the 1/2 factor", "kl_normal", "kl = 0.5 * (", "kl = ("),
    ("kl averaged over the last dim", "kl_normal", "return kl.sum(-1)", "return kl.mean(-1)"),
    ("kl with p and q swapped in the variance ratio", "kl_normal",
     "var_ratio = torch.exp(q_log_var - p_log_var)", "var_ratio = torch.exp(p_log_var - q_log_var)"),
    ("uniform noise", "sample_gaussian", "eps = torch.randn(shape,", "eps = torch.rand(shape,"),
    ("std = exp(log_var)", "sample_gaussian", "std = torch.exp(0.5 * log_var)", "std = torch.exp(log_var)"),
    ("result cast to float32", "sample_gaussian", "return mean + std * eps", "return (mean + std * eps).float()"),
    ("detached std", "sample_gaussian", "return mean + std * eps", "return mean + std.detach() * eps"),
    ("torch.normal when eps is None (not reparameterised)", "sample_gaussian",
     "        eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)\n",
     "        return torch.normal(mean.expand(shape), std.expand(shape))\n"),
    ("in-place update of mean", "sample_gaussian", "return mean + std * eps", "return mean.add_(std * eps)"),
    ("unstable log-sigmoid", "log_bernoulli_with_logits",
     "x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits)",
     "x * torch.log(torch.sigmoid(logits)) + (1.0 - x) * torch.log(1 - torch.sigmoid(logits))"),
    ("CS236's BCEWithLogitsLoss form, which does not broadcast", "log_bernoulli_with_logits",
     "log_p = x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits)\n    return log_p.sum(-1)",
     "return -torch.nn.BCEWithLogitsLoss(reduction='none')(input=logits, target=x).sum(-1)"),
    ("binary x only", "log_bernoulli_with_logits",
     "log_p = x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits)",
     "log_p = torch.where(x > 0.5, F.logsigmoid(logits), F.logsigmoid(-logits))"),
    ("log-sum-exp without the 1/n", "log_mean_exp",
     "return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])", "return torch.logsumexp(x, dim=dim)"),
    ("naive log(mean(exp))", "log_mean_exp",
     "return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])", "return torch.log(torch.exp(x).mean(dim))"),
    ("decoding the mean instead of a sample", "negative_elbo_bound",
     "    z = sample_gaussian(mean, log_var)\n    logits", "    z = mean\n    logits"),
    ("reconstruction summed over the batch", "negative_elbo_bound",
     "rec = -log_bernoulli_with_logits(x, logits).mean()", "rec = -log_bernoulli_with_logits(x, logits).sum()"),
    ("IWAE averaging log-weights", "negative_iwae_bound",
     "return -log_mean_exp(log_w, dim=0).mean()", "return -log_w.mean(0).mean()"),
    ("IWAE without log q", "negative_iwae_bound",
     "log_w = log_px_given_z + log_pz - log_qz", "log_w = log_px_given_z + log_pz"),
    ("IWAE log-sum-exp instead of log-mean-exp", "negative_iwae_bound",
     "return -log_mean_exp(log_w, dim=0).mean()", "return -torch.logsumexp(log_w, dim=0).mean()"),
]


@pytest.mark.parametrize("bug,function,old,new", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points_on_a_check_of_the_buggy_function(bug, function, old, new):
    grade = grade_source("hw2_vae", mutate(VAE, old, new), functions=(function,), fast=True)
    lost = failed(grade)
    assert lost, f"{bug}: no check failed"
    assert lost[0].startswith(f"{function}: "), lost


def test_failure_feedback_names_function_property_counterexample_and_values():
    grade = grade_source("hw2_vae", mutate(VAE, "kl = 0.5 * (", "kl = ("), functions=("kl_normal",), hidden=False)
    bad = next(r for r in grade.results if not r.passed)
    assert bad.check.name.startswith("kl_normal: ")
    assert "got" in bad.output and "expected" in bad.output
    assert "Counterexample" in bad.output or "Monte-Carlo" in bad.output


def test_missing_function_costs_only_the_checks_that_need_it():
    source = mutate(VAE, "def log_mean_exp(x: torch.Tensor, dim: int)", "def renamed_lme(x: torch.Tensor, dim: int)")
    grade = grade_source("hw2_vae", source, hidden=False)
    by_function = {}
    for r in grade.results:
        by_function.setdefault(r.check.function, []).append(r)
    assert all(not r.passed and "log_mean_exp is not defined in vae.py" in r.output for r in by_function["log_mean_exp"])
    for fn in ("kl_normal", "sample_gaussian", "log_bernoulli_with_logits", "negative_elbo_bound"):
        assert all(r.passed for r in by_function[fn]), fn
    # negative_iwae_bound calls log_mean_exp: its checks fail with the student's NameError, not a grader error
    assert any("NameError" in r.output for r in by_function["negative_iwae_bound"])


def test_syntax_error_is_one_clear_message_on_every_check():
    grade = grade_source("hw2_vae", VAE + "\ndef broken(:\n    pass\n", hidden=False)
    assert grade.score == 0
    assert all("could not be imported" in r.output and "SyntaxError" in r.output for r in grade.results)


def test_same_submission_same_seed_gives_identical_results():
    source = mutate(VAE, "kl = 0.5 * (", "kl = (")
    first = grade_source("hw2_vae", source, functions=("kl_normal", "sample_gaussian"), seed=7)
    second = grade_source("hw2_vae", source, functions=("kl_normal", "sample_gaussian"), seed=7)
    assert [(r.check.name, r.passed, r.score, r.output) for r in first.results] == \
           [(r.check.name, r.passed, r.score, r.output) for r in second.results]


def test_notebook_folder_and_zip_forms_of_the_reference_grade_the_same(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext autoreload\n!nvidia-smi"),
                nbformat.v4.new_code_cell(VAE),
                nbformat.v4.new_code_cell("for _ in range(10**9):\n    pass  # a training loop at top level")]
    notebook = tmp_path / "vae.ipynb"
    nbformat.write(nb, notebook)
    folder = tmp_path / "submission" / "hw2"
    folder.mkdir(parents=True)
    (folder / "vae.py").write_text(VAE)
    (folder / "helpers.py").write_text("X = 1\n")
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("hw2/vae.py", VAE)
    for path in (notebook, tmp_path / "submission", archive):
        grade = grade_source("hw2_vae", path, functions=("kl_normal", "log_mean_exp"), hidden=False)
        assert failed(grade) == [], (path, [r.output for r in grade.results if not r.passed])


def test_a_check_failing_through_a_broken_callee_points_at_the_callee():
    grade = grade_source("hw2_vae", mutate(VAE, "kl = 0.5 * (", "kl = ("),
                         functions=("kl_normal", "negative_elbo_bound"), hidden=False)
    nelbo_kl = next(r for r in grade.results if r.check.name.startswith("negative_elbo_bound: kl is"))
    assert not nelbo_kl.passed
    assert "Hint: negative_elbo_bound calls kl_normal, which also fails its own checks" in nelbo_kl.output
    assert all("Hint" not in r.output for r in grade.results if r.check.function == "kl_normal")


# ---------------------------------------------------------------------- the checks themselves (no grading)


def test_constants_of_the_1d_latent_model_match_quadrature():
    """checks_hidden.py holds the 1-D model's integrals as numbers (value pins: a public check naming
    them would let a lookup table pass); recompute them from the reference by 120-node Gauss-Hermite
    quadrature."""
    from assignments.hw2_vae import checks_hidden as h, models as m
    from reference import vae

    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    nodes, weights = torch.from_numpy(nodes), torch.from_numpy(weights / math.sqrt(2 * math.pi))

    def log_px_given_z(z):
        return vae.log_bernoulli_with_logits(m.X_ONE, z[:, None] * m.DEC_W + m.DEC_B)

    def log_normal(z, mean, log_var):
        return -0.5 * (math.log(2 * math.pi) + log_var + (z - mean) ** 2 / math.exp(log_var))

    z = (m.ENC_MEAN + math.exp(0.5 * m.ENC_LOG_VAR) * nodes).requires_grad_(True)
    f = log_px_given_z(z) + log_normal(z, 0.0, 0.0)
    (f_prime,) = torch.autograd.grad(f.sum(), z)
    z, f = z.detach(), f.detach()

    def moments(values):
        mean = float((weights * values).sum())
        return mean, float((weights * (values - mean) ** 2).sum())

    assert h.NEG_LOG_PX == pytest.approx(-float(torch.logsumexp(weights.log() + log_px_given_z(nodes), 0)), abs=1e-12)
    for got, values in ((h.REC, -log_px_given_z(z)), (h.LOG_W, f - log_normal(z, m.ENC_MEAN, m.ENC_LOG_VAR)),
                        (h.GRAD_Q_MEAN, -f_prime), (h.GRAD_Q_LOG_VAR, -0.5 * (z - m.ENC_MEAN) * f_prime - 0.5)):
        assert (got.mean, got.var) == pytest.approx(moments(values), abs=1e-12)


def test_public_files_implement_no_graded_function():
    """Students read checks_public.py and models.py: no log-sigmoid, Bernoulli log-likelihood, closed-form
    KL, log-sum-exp of x or reparameterised sample formula there (the exact values are hidden checks)."""
    banned = ("logsigmoid", "softplus", "binary_cross_entropy", "Bernoulli(", "kl_divergence", "exp().mean(",
              "from reference", "import reference")
    for name in ("checks_public.py", "models.py"):
        text = (HW2 / name).read_text()
        assert [b for b in banned if b in text] == [], name


def test_every_draw_is_labelled_and_every_requirement_exists():
    from grader.assignment import load_assignment

    for name in ("checks_public.py", "checks_hidden.py"):
        for call in re.findall(r"data\.draw\((.*)", (HW2 / name).read_text()):
            assert "label=" in call, call
    assignment = load_assignment("hw2_vae")
    ids = {c.id for c in assignment.checks}
    for c in assignment.checks:  # a public check may require a hidden pin: it gates only where that runs (grade)
        assert set(c.requires) <= ids, (c.id, c.requires)


def test_public_points_are_what_the_docs_say():
    from grader.assignment import load_assignment

    checks = load_assignment("hw2_vae").checks
    assert sum(c.points for c in checks if not c.hidden) == 35
    assert sum(c.points for c in checks if c.hidden) == 21


def test_alternatives_are_complete_modules():
    """validate grades them; here only that each defines every function and says its style."""
    from grader.assignment import load_assignment

    functions = set(load_assignment("hw2_vae").config.functions)
    files = sorted((HW2 / "alternatives").glob("*.py"))
    assert len(files) >= 3
    for path in files:
        tree = ast.parse(path.read_text())
        assert "style:" in (ast.get_docstring(tree) or ""), path.name
        assert functions <= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, path.name


@pytest.mark.slow
def test_correct_samples_get_full_marks():
    """examples/hw2_vae: the correct module and the notebook written in students' styles lose nothing
    (public and hidden checks: a sample marked correct once lost the broadcasting point)."""
    examples = ROOT / "examples" / "hw2_vae"
    for name in ("correct.py", "broken_notebook.ipynb"):
        g = grade_source("hw2_vae", examples / name)
        assert failed(g) == [] and not g.problem, (name, [r.output[:300] for r in g.results if not r.passed])


def test_a_sample_drawn_from_its_own_generator_keeps_every_point():
    """A correct style the judge-side checks must not punish: eps from a private torch.Generator, so no
    two calls agree whatever the seed. The second-call mutation test and the finite-difference gradient
    test then find the function not reproducible and leave the verdict to the other checks."""
    source = VAE + (
        "\n_gen = torch.Generator().manual_seed(0)\n\n\n"
        "def sample_gaussian(mean, log_var, eps=None):\n"
        "    if eps is None:\n"
        "        eps = torch.randn(mean.shape, generator=_gen, dtype=torch.float64).to(mean.dtype)\n"
        "    return mean + torch.exp(0.5 * log_var) * eps\n")
    grade = grade_source("hw2_vae", source, functions=("sample_gaussian",))
    assert failed(grade) == [] and grade.score == grade.max_score, [r.output for r in grade.results if not r.passed]
