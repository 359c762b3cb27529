"""`--gpu`: student code runs on a CUDA device and correct work still gets full marks.

These run only where torch sees a CUDA GPU (a development machine with one, or
the device machine: see docs/docker.md); elsewhere they skip. On a GPU the judge
still draws and compares on the CPU; the worker moves every input to ``cuda``,
so each reference function computes on the GPU, in float32 and float64.
"""
from __future__ import annotations

import pytest
import torch

from conftest import reference_source
from grader.api import run_grading
from grader.assignment import assignment_ids, load_assignment
from grader.handout import template_source

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def grade_file(tmp_path, assignment_id: str, source: str):
    module = load_assignment(assignment_id).config.module
    path = tmp_path / f"{module}.py"
    path.write_text(source)
    return run_grading(submission=path, assignment_id=assignment_id, hidden=True, sandbox="process", gpu=True)


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_reference_gets_full_marks_on_the_gpu(assignment_id, tmp_path):
    module = load_assignment(assignment_id).config.module
    g = grade_file(tmp_path, assignment_id, reference_source(module))
    lost = [(r.check.id, r.output[:400]) for r in g.results if not r.passed]
    assert not lost and not g.problem, (lost, g.problem)
    assert g.score == g.max_score > 0


@pytest.mark.parametrize("assignment_id", ["hw2_vae"])
def test_blank_template_gets_nothing_on_the_gpu(assignment_id, tmp_path):
    module = load_assignment(assignment_id).config.module
    g = grade_file(tmp_path, assignment_id, template_source(reference_source(module)))
    assert g.score == 0 and len(g.results) == len(g.assignment.checks)


def test_student_code_really_runs_on_cuda(tmp_path):
    """A submission that works only on CPU tensors loses every check of that function."""
    source = reference_source("vae").replace(
        'def kl_normal(', 'def kl_normal(*args, **kwargs):\n'
        '    assert all(not getattr(a, "is_cuda", False) for a in args), "got a CUDA tensor"\n'
        '    return _kl_normal(*args, **kwargs)\n\n\ndef _kl_normal(', 1)
    g = grade_file(tmp_path, "hw2_vae", source)
    kl = [r for r in g.results if r.check.function == "kl_normal"]
    assert kl and all(not r.passed and "got a CUDA tensor" in r.output for r in kl), [r.output[:200] for r in kl]
