"""Feedback people can act on: counterexamples, failure messages, printed output, hints, the report."""
from __future__ import annotations

import io
import re
import time

import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import grade_source, mutate, reference_source
from grader.api import make_sandbox
from grader.assignment import load_assignment
from grader.checks import Check
from grader.compare import expect, expect_close
from grader.feedback import (Frame, StudentModule, add_root_cause_hints, broken_callees, counterexample,
                             example_fields, is_not_implemented, student_frames)
from grader.judge import CheckResult, Grade, grade, seeded
from grader.report import make_console, print_report, rows
from grader.results import to_results
from grader.strategies import BatchEvent, Gaussian, batch_and_event, gaussians
from grader.submission import submission_from_bytes

VAE = reference_source("vae")


def grade_checks(source: str, checks: list[Check], assignment_id: str = "hw2_vae") -> Grade:
    """Grade ``source`` with the given checks only (some of them written here), in the process sandbox."""
    assignment = load_assignment(assignment_id, hidden=False)
    sub = submission_from_bytes(source.encode(), assignment.config.module)
    return grade(assignment, sub, sandbox=make_sandbox(assignment, kind="process"), checks=checks)


def public_check(check_id: str) -> Check:
    """One of hw2's public checks, by id (the function's name in checks_public.py)."""
    return next(c for c in load_assignment("hw2_vae", hidden=False).checks if c.id == check_id)


# ---------------------------------------------------------------------- counterexamples

MULTI_LINE_NOTE = """Failing test case: kl_non_negative(
    student=student,
    data=data(...),
    be=BatchEvent(batch=(2,), event=3),
    dtype=torch.float32,
    x=tensor([[0., 0., 0., 0.],
            [1., 1., 1., 1.]]),
    k=0,  # or any other generated value
    s='a, (b',
)"""


def test_counterexample_names_each_argument_and_draw_and_indents_tensors():
    exc = AssertionError("boom")
    exc.__notes__ = [
        MULTI_LINE_NOTE,
        "Draw 1 (q): Gaussian(mean=tensor([[0., 0.],\n                      [0., 0.]]),\n"
        "                log_var=tensor([0., 0.]))",
        "Draw 2: 5",
    ]
    assert example_fields(exc.__notes__) == [
        ("be", "BatchEvent(batch=(2,), event=3)"),
        ("dtype", "torch.float32"),
        ("x", "tensor([[0., 0., 0., 0.],\n        [1., 1., 1., 1.]])"),
        ("k", "0"),
        ("s", "'a, (b'"),
        ("q", "Gaussian(mean=tensor([[0., 0.],\n                      [0., 0.]]),\n                log_var=tensor([0., 0.]))"),
        ("draw 2", "5"),
    ]
    text = counterexample(exc)
    assert "student" not in text and "data(" not in text and "Draw" not in text
    lines = text.splitlines()
    assert lines[:4] == ["", "", "Counterexample (smallest found):", "  be = BatchEvent(batch=(2,), event=3)"]
    x_row = lines.index("  x = tensor([[0., 0., 0., 0.],")
    assert lines[x_row + 1] == "              [1., 1., 1., 1.]])"  # under the first row, as torch aligns them
    assert "  q = Gaussian(mean=tensor([[0., 0.]," in lines and "  draw 2 = 5" in lines


def test_counterexample_of_a_one_line_call_note():
    exc = AssertionError()
    exc.__notes__ = ["Falsifying example: body(student=student, q=Gaussian(mean=1, log_var=2), data=data(...), t=0.5)"]
    assert example_fields(exc.__notes__) == [("q", "Gaussian(mean=1, log_var=2)"), ("t", "0.5")]


def test_shared_strategy_values_have_reprs_with_field_names():
    be = BatchEvent((2,), 3)
    batch, event = be  # still unpacks and indexes like the (batch, event) tuple checks use
    assert (batch, be[1], be.shape) == ((2,), 3, (2, 3)) and repr(be) == "BatchEvent(batch=(2,), event=3)"
    g = Gaussian(torch.zeros(2, 3), torch.ones(2, 3))
    text = repr(g)
    assert text.startswith("Gaussian(mean=tensor([[0., 0., 0.],\n                      [0., 0., 0.]]),\n")
    assert "\n         log_var=tensor([[1., 1., 1.],\n                         [1., 1., 1.]]))" in text
    assert repr(Gaussian(torch.zeros(1), torch.zeros(1))) == "Gaussian(mean=tensor([0.]), log_var=tensor([0.]))"


def test_counterexample_from_hypothesis_itself():
    """What hypothesis writes for @given arguments and labelled / unlabelled draws renders by name."""
    @given(data=st.data(), be=batch_and_event())
    def body(student, data, be):
        q = data.draw(gaussians((2, 2)), label="q")
        data.draw(st.integers(0, 3))
        assert be.event > 5

    try:
        seeded(body, 1, examples=5, shrink=True)("student")
    except AssertionError as exc:
        text = counterexample(exc)
    assert "  be = BatchEvent(batch=(), event=1)" in text
    lines = text.splitlines()
    q = lines.index("  q = Gaussian(mean=tensor([[0., 0.],")
    assert lines[q + 1] == " " * len("  q = Gaussian(mean=tensor([") + "[0., 0.]]),"  # rows aligned as torch does
    assert lines[q + 2] == " " * len("  q = Gaussian(") + "log_var=tensor([[0., 0.],"
    assert lines[-1] == "  draw 2 = 0"


def test_a_real_failing_check_shows_named_fields():
    bug = mutate(VAE, "kl = 0.5 * (", "kl = (")
    output = grade_checks(bug, [public_check("kl_gradients")]).results[0].output
    shown = output.split("\n\nCounterexample (smallest found):\n", 1)[1].split("\n\n")[0].splitlines()
    named = [line for line in shown if re.match(r"  [a-z_0-9 ]+ = \S", line)]
    assert named and all(line in named or line.startswith(" " * 5) for line in shown), shown  # continuations indented
    assert "  batch = ()" in named and "  d = 1" in named, shown
    assert any("= Gaussian(mean=tensor(" in line for line in named), shown
    assert "Draw 1" not in output and "student" not in output and "((), 1)" not in output


# ---------------------------------------------------------------------- what the student printed


@given(n=st.integers(0, 100))
def _fails_from_ten(student, n):
    student.log_mean_exp(torch.full((1, 1), float(n)), 0)
    expect(n < 10, f"fails for n = {n}")


def test_printed_output_is_the_failing_examples_only():
    printing = mutate(VAE, "    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])",
                      "    print(f'log_mean_exp got {x.flatten().tolist()}')\n"
                      "    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])")
    r = grade_checks(printing, [Check("log_mean_exp", "fails from ten", 1, _fails_from_ten)]).results[0]
    assert not r.passed and "fails for n = 10" in r.output
    printed = r.output.split("Your code printed:\n", 1)[1]
    assert printed.splitlines() == ["log_mean_exp got [10.0]"], r.output  # the shrunk example's print alone


# ---------------------------------------------------------------------- the check's own exceptions


def _index_the_output(student):
    kl = student.kl_normal(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    expect_close(kl[:, 0], torch.zeros(2))  # the check assumes [B, D]: IndexError on the (right) [B] output


def _backward_through_the_output(student):
    kl = student.kl_normal(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    kl.sum().backward()  # decoded outputs have no grad_fn


def test_an_exception_in_the_checks_own_code_says_what_the_output_was():
    checks = [Check("kl_normal", "indexes the output", 1, _index_the_output),
              Check("kl_normal", "backward through the output", 1, _backward_through_the_output)]
    indexing, backward = grade_checks(VAE, checks).results
    assert indexing.output.startswith("kl_normal returned a tensor of shape [2] and dtype float32, which the check "
                                      "could not use (computing with it raised IndexError: "), indexing.output
    assert "not your code's" in indexing.output and "kl_normal raised" not in indexing.output
    assert backward.output.startswith("kl_normal returned a tensor of shape [2] and dtype float32, which the check "
                                      "could not use (computing with it raised RuntimeError: element 0 of tensors")


# ---------------------------------------------------------------------- hints


def _sample_none_is_reparameterised(student):
    mean, log_var = torch.zeros(64, 2, dtype=torch.float64), torch.zeros(64, 2, dtype=torch.float64)
    r = student.call("sample_gaussian", mean, log_var, wrt=(mean,))
    expect(r.grad(mean) is not None and bool((r.grad(mean) == 1).all()),
           "with eps=None, dz/dmean must be 1 (a reparameterised sample)")


def test_a_non_reparameterised_sample_gaussian_is_named_when_negative_elbo_bound_fails():
    source = mutate(VAE, "        eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)\n    return mean + std * eps",
                    "        eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)\n"
                    "        return torch.normal(mean.expand(shape), std.expand(shape))\n"
                    "    return mean + std * eps")
    checks = [Check("sample_gaussian", "with eps=None, reparameterised", 1, _sample_none_is_reparameterised),
              public_check("nelbo_encoder_gradients")]
    sample, nelbo = grade_checks(source, checks).results
    assert not sample.passed and not nelbo.passed
    assert nelbo.output.endswith("Hint: negative_elbo_bound calls sample_gaussian, which also fails its own checks; "
                                 "fix sample_gaussian first."), nelbo.output


def test_an_exception_names_the_student_function_it_was_raised_in():
    """negative_iwae_bound passes x [B, D] with logits [k, B, D] to the student's own helper, which raises;
    sample_gaussian also fails its checks, but the traceback says where to look."""
    helper = ("def bce(x, logits):\n"
              "    return -F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(-1)\n\n\n"
              "def negative_iwae_bound(")
    source = mutate(VAE, "def negative_iwae_bound(", helper)
    source = mutate(source, "log_px_given_z = log_bernoulli_with_logits(x, logits)", "log_px_given_z = bce(x, logits)")
    source = mutate(source, "std = torch.exp(0.5 * log_var)", "std = torch.exp(log_var)")
    line = source.splitlines().index("    return -F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(-1)")
    checks = [public_check("sample_given_eps_distribution"),
              public_check("iwae_exact_for_trivial_model")]
    sample, iwae = grade_checks(source, checks).results
    assert not sample.passed and not iwae.passed
    assert iwae.raised_in == Frame("vae.py", line + 1, "bce", iwae.raised_in.code)
    assert iwae.output.endswith(f"Hint: the error was raised in bce (vae.py, line {line + 1}), called from "
                                "negative_iwae_bound: look there first."), iwae.output
    assert "sample_gaussian" not in iwae.output


def _results(functions_passed: list[tuple[str, bool]]) -> list[CheckResult]:
    out = []
    for i, (function, ok) in enumerate(functions_passed):
        def body(student):
            pass

        body.__name__ = f"check_{i}"
        out.append(CheckResult(Check(function, "a property", 1, body), ok, float(ok), "" if ok else "wrong", 0.0))
    return out


def test_hints_name_the_lowest_failing_callees():
    source = b"""
def f(x):
    return g(x) + m(x)
def g(x):
    return h(x)
def h(x):
    return k(x)
def k(x):
    return k(x - 1) if x else x
def m(x):
    return n(x)
def n(x):
    return m(x)
"""
    module = StudentModule.parse(source, "vae.py")
    # f -> g (fails) -> h (passes) -> k (fails, and calls itself): k is the lowest; m <-> n fail in a cycle: both
    # are named
    assert broken_callees("f", module.calls, {"f", "g", "k"}) == ["k"]
    assert broken_callees("f", module.calls, {"f", "m", "n"}) == ["m", "n"]
    assert broken_callees("k", module.calls, {"f", "g", "k"}) == []


def test_hints_are_linear_in_the_call_graph():
    """A dozen helpers that all name each other: every simple path is 12! walks; one BFS is instant."""
    helpers = [f"helper_{i}" for i in range(12)]
    source = "def kl_normal(x):\n    return helper_0(x)\n\n" + "".join(
        f"def {h}(x):\n    return " + " + ".join(f"{o}(x)" for o in helpers if o != h) + " + sample_gaussian(x)\n\n"
        for h in helpers) + "def sample_gaussian(x):\n    return x\n"
    results = _results([("kl_normal", False), ("kl_normal", False), ("sample_gaussian", False)])
    start = time.monotonic()
    add_root_cause_hints(results, StudentModule.parse(source.encode(), "vae.py"))
    assert time.monotonic() - start < 1.0
    assert results[0].output.endswith("Hint: kl_normal calls sample_gaussian, which also fails its own checks; "
                                      "fix sample_gaussian first.")
    assert "Hint" not in results[2].output


def test_frames_and_stubs_from_a_worker_traceback():
    traceback = ('  File "vae.py", line 140, in negative_elbo_bound\n    z = sample_gaussian(mean, log_var)\n'
                 '        ^^^^^\n  File "vae.py", line 72, in sample_gaussian\n'
                 '    raise NotImplementedError  # TODO: your implementation\nNotImplementedError\n')
    frames = student_frames(traceback)
    assert [(f.line, f.function) for f in frames] == [(140, "negative_elbo_bound"), (72, "sample_gaussian")]
    assert frames[-1].code.startswith("raise NotImplementedError")

    class Error:
        message = "NotImplementedError: \"addmm\" not implemented for 'Half'"

    torch_says = Frame("vae.py", 10, "kl_normal", "return a @ b")
    assert not is_not_implemented(Error(), torch_says)  # torch's, not a stub
    Error.message = "NotImplementedError"
    assert is_not_implemented(Error(), frames[-1])


def test_methods_are_named_by_their_class():
    source = b"class AffineCoupling:\n    def __init__(self):\n        pass\n\n    def forward(self, x):\n        return x\n"
    module = StudentModule.parse(source, "flows.py")
    assert module.qualify(Frame("flows.py", 6, "forward")).function == "AffineCoupling.forward"
    assert module.qualify(Frame("helpers.py", 6, "forward")).function == "forward"


def test_a_stub_callee_is_named_once_per_function():
    stub = mutate(VAE, '''    std = torch.exp(0.5 * log_var)
    if eps is None:''', '''    raise NotImplementedError  # TODO
    std = torch.exp(0.5 * log_var)
    if eps is None:''')
    g = grade_source("hw2_vae", stub, functions=("negative_elbo_bound",), hidden=False)
    assert {r.brief for r in g.results if not r.passed} == {"needs sample_gaussian, which is not implemented yet"}
    assert all(r.output.startswith("negative_elbo_bound needs sample_gaussian, which is not implemented yet "
                                   "(NotImplementedError at vae.py, line ") for r in g.results if not r.passed)


# ---------------------------------------------------------------------- the report and results.json


def test_the_report_is_one_row_per_unimplemented_function_and_is_not_wrapped():
    results = _results([("kl_normal", False), ("kl_normal", False), ("log_mean_exp", True), ("log_mean_exp", False)])
    for r in results[:2]:
        r.brief = "not implemented yet"
    results[3].output = "log_mean_exp(x, dim=0): 1 of 3 values differ " + "x" * 150
    assert [(row.label, row.score, row.points) for row in rows(results)] == [
        ("kl_normal: not implemented yet (2 checks)", 0, 2), ("log_mean_exp: a property", 1, 1),
        ("log_mean_exp: a property", 0, 1)]
    assignment = load_assignment("hw2_vae", hidden=False)
    grade = Grade(assignment, results, 2026, "docker", "docker sandbox (dgm-grade:latest): uid 1000, no network, "
                  "read-only root, tmpfs /work and /tmp, 2048 MB memory, 64 processes, 1 CPU, no capabilities, no GPU")
    out = io.StringIO()
    print_report(make_console(file=out), grade)
    text = out.getvalue()
    assert "│ kl_normal: not implemented yet (2 checks) │" in text
    assert text.count("╭─") == 1  # one panel: the log_mean_exp value failure
    assert "1 of 3 values differ " + "x" * 150 in text  # one line, however long
    assert grade.isolation in text


def test_results_json_names_the_sandbox_once():
    assignment = load_assignment("hw2_vae", hidden=False)
    docker = Grade(assignment, [], 7, "docker", "docker sandbox (dgm-grade:latest): uid 1000, no network")
    assert to_results(docker).output.splitlines()[-1] == \
        "Graded in the docker sandbox (dgm-grade:latest): uid 1000, no network; seed 7."
    other = Grade(assignment, [], 7, "vm", "a firecracker microVM")
    assert to_results(other).output.splitlines()[-1] == "Graded in the vm sandbox (a firecracker microVM); seed 7."


_calls = []


@given(n=st.integers(0, 3))
def _fails_once(student, n):
    kl = student.kl_normal(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    _calls.append(n)
    if len(_calls) == 1:
        kl[:, 0]  # IndexError, once: the replay passes


def test_a_check_error_that_does_not_reproduce_is_still_not_the_students():
    _calls.clear()
    r = grade_checks(VAE, [Check("kl_normal", "fails once", 1, _fails_once)]).results[0]
    assert r.output.startswith("kl_normal returned a tensor of shape [2] and dtype float32, which the check could not "
                               "use (computing with it raised IndexError"), r.output
    assert "did not reproduce" in r.output


def test_what_the_module_prints_when_imported_is_a_note_not_a_checks_output():
    source = VAE + "\nprint('loading my VAE')\n"
    g = grade_checks(source, [Check("log_mean_exp", "fails from ten", 1, _fails_from_ten)])
    assert "vae.py printed when imported:\nloading my VAE" in g.notes
    assert "loading my VAE" not in g.results[0].output
