"""hw3_flows: realistic bugs lose points on their function, and the examples grade as documented."""
from __future__ import annotations

import pytest

from conftest import ROOT, failed, grade_source, mutate, reference_source

FLOWS = reference_source("flows")


# Realistic student bugs: (bug, buggy function, text in the reference, replacement).
BUGS = [
    ("MADE output layer not strict (output sees itself)", "made_masks",
     "(in_degrees[:, None] > prev_degrees[None, :])", "(in_degrees[:, None] >= prev_degrees[None, :])"),
    ("MADE hidden layers strict (paths lost)", "made_masks",
     "(degrees[:, None] >= prev_degrees[None, :])", "(degrees[:, None] > prev_degrees[None, :])"),
    ("MADE random hidden degrees", "made_masks",
     "degrees = torch.arange(size) % n_hidden_degrees", "degrees = torch.randint(0, n_hidden_degrees, (size,))"),
    ("MADE hidden degrees 1 .. D-1 with 0-based inputs (off by one)", "made_masks",
     "degrees = torch.arange(size) % n_hidden_degrees", "degrees = torch.arange(size) % n_hidden_degrees + 1"),
    ("MADE masks transposed to [in, out]", "made_masks",
     "masks.append((degrees[:, None] >= prev_degrees[None, :]).to(dtype))",
     "masks.append((degrees[:, None] >= prev_degrees[None, :]).to(dtype).T)"),
    ("PixelCNN mask types swapped", "pixelcnn_mask", 'if mask_type == "A":\n', 'if mask_type == "B":\n'),
    ("PixelCNN keeps the pixel right of the centre", "pixelcnn_mask",
     "spatial[c, c + 1:] = 0.0", "spatial[c, c + 2:] = 0.0"),
    ("PixelCNN mask transposed (column-major scan)", "pixelcnn_mask",
     "return mask.to(torch.get_default_dtype()).clone()",
     "return mask.transpose(-1, -2).to(torch.get_default_dtype()).clone()"),
    ("coupling without tanh in forward", "AffineCoupling",
     "        s = torch.tanh(s)\n        y = mask", "        y = mask"),
    ("coupling log_det summed over all dims", "AffineCoupling",
     "log_det = ((1.0 - mask) * s).sum(dim=-1)", "log_det = s.sum(dim=-1)"),
    ("coupling inverse with exp(s)", "AffineCoupling",
     "(y - t) * torch.exp(-s)", "(y - t) * torch.exp(s)"),
    ("coupling conditioner sees the unmasked input", "AffineCoupling",
     "s, t = self.net(x * mask).chunk(2, dim=-1)", "s, t = self.net(x).chunk(2, dim=-1)"),
    ("coupling inverse subtracting t from y in place", "AffineCoupling",
     "return mask * y + (1.0 - mask) * (y - t) * torch.exp(-s)",
     "y -= (1.0 - mask) * t\n        return mask * y + (1.0 - mask) * y * torch.exp(-s)"),
    ("coupling with s and t swapped", "AffineCoupling",
     "s, t = self.net(x * mask).chunk(2, dim=-1)", "t, s = self.net(x * mask).chunk(2, dim=-1)"),
    ("flow subtracting log_det", "flow_log_prob",
     "total_log_det = total_log_det + log_det", "total_log_det = total_log_det - log_det"),
    ("flow without the 2 pi constant", "flow_log_prob",
     "(z ** 2 + math.log(2.0 * math.pi)).sum(dim=-1)", "(z ** 2).sum(dim=-1)"),
    ("flow applying the layers in reverse", "flow_log_prob", "for layer in layers:", "for layer in reversed(layers):"),
    ("flow detaching the log-determinants", "flow_log_prob",
     "total_log_det = total_log_det + log_det", "total_log_det = total_log_det + log_det.detach()"),
]


@pytest.mark.parametrize("bug,function,old,new", BUGS, ids=[b[0] for b in BUGS])
def test_bug_loses_points_on_a_check_of_the_buggy_function(bug, function, old, new):
    grade = grade_source("hw3_flows", mutate(FLOWS, old, new), functions=(function,), fast=True)
    lost = failed(grade)
    assert lost, f"{bug}: no check failed"
    assert lost[0].startswith(f"{function}: "), lost


def test_float32_masks_score_full_marks():
    """The handout asks for "float 0/1" masks: `.float()` (float32 whatever the default dtype) is correct."""
    source = mutate(mutate(FLOWS, "masks.append((in_degrees[:, None] > prev_degrees[None, :]).to(dtype))",
                           "masks.append((in_degrees[:, None] > prev_degrees[None, :]).float())"),
                    "return mask.to(torch.get_default_dtype()).clone()", "return mask.float().clone()")
    grade = grade_source("hw3_flows", source, functions=("made_masks", "pixelcnn_mask"), fast=True)
    assert failed(grade) == []


# Answers that are not the function (issue 9): each earned points through consistency and
# special-case checks; now those count only with the function's value pin. Fragments replace
# the reference's definition (as grader.degenerate.with_fragment does).
NOT_THE_FUNCTION = [
    ("AffineCoupling as the identity", "AffineCoupling", """
class AffineCoupling(nn.Module):
    def __init__(self, mask, net):
        super().__init__()
        self.mask, self.net = mask, net

    def forward(self, x):
        return x.clone(), torch.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, y):
        return y.clone()
"""),
    ("made_masks all zeros", "made_masks", """
def made_masks(in_features, hidden_sizes, order=None):
    sizes = [in_features, *hidden_sizes, in_features]
    return [torch.zeros(n_out, n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
"""),
    ("flow_log_prob ignoring the layers (the base density)", "flow_log_prob", """
def flow_log_prob(layers, x):
    return -0.5 * (x ** 2 + math.log(2 * math.pi)).sum(dim=-1)
"""),
]


@pytest.mark.parametrize("what,function,fragment", NOT_THE_FUNCTION, ids=[n[0] for n in NOT_THE_FUNCTION])
def test_answers_that_are_not_the_function_score_nothing(what, function, fragment):
    grade = grade_source("hw3_flows", FLOWS + "\n" + fragment, functions=(function,), fast=True)
    assert grade.score == 0, [r.check.name for r in grade.results if r.passed]


@pytest.mark.slow
def test_examples_grade_as_documented():
    correct = grade_source("hw3_flows", ROOT / "examples" / "hw3_flows" / "correct.py")
    assert failed(correct) == [], [r.output for r in correct.results if not r.passed]
    wrong = grade_source("hw3_flows", ROOT / "examples" / "hw3_flows" / "partly_wrong.py", hidden=False)
    lost = {name.split(":")[0] for name in failed(wrong)}
    assert lost == {"made_masks", "pixelcnn_mask", "flow_log_prob"}, failed(wrong)
    broken = grade_source("hw3_flows", ROOT / "examples" / "hw3_flows" / "broken.ipynb", hidden=False)
    assert 0 < broken.score < broken.max_score
    assert {name.split(":")[0] for name in failed(broken)} == {"pixelcnn_mask"}


def test_a_coupling_cut_from_its_input_loses_the_jacobian_checks():
    """The conditioner's input detached: y, log_det and the parameter gradients are right, but dy/dx lacks
    the transformed entries' dependence on the masked ones (a stacked flow cannot train its earlier
    layers). The worker's Jacobian is now verified against forward's values (it was trusted: these
    checks passed); the inverse is cut the same way, so J_inverse @ J_forward is still the identity."""
    source = mutate(mutate(FLOWS, "s, t = self.net(x * mask).chunk(2, dim=-1)",
                           "s, t = self.net((x * mask).detach()).chunk(2, dim=-1)"),
                    "s, t = self.net(y * mask).chunk(2, dim=-1)", "s, t = self.net((y * mask).detach()).chunk(2, dim=-1)")
    grade = grade_source("hw3_flows", source, functions=("AffineCoupling",))
    outputs = {r.check.id: r.output for r in grade.results if not r.passed}
    assert {"coupling_log_det", "coupling_jacobian_structure", "coupling_inverse_jacobian"} <= set(outputs), outputs
    assert "does not match how AffineCoupling.forward's value changes" in outputs["coupling_log_det"]
    assert "coupling_parameter_gradients" not in outputs and "coupling_masked_identity" not in outputs
