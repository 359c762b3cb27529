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
    ("MADE masks transposed to [in, out]", "made_masks",
     "masks.append((degrees[:, None] >= prev_degrees[None, :]).to(dtype))",
     "masks.append((degrees[:, None] >= prev_degrees[None, :]).to(dtype).T)"),
    ("PixelCNN mask types swapped", "pixelcnn_mask", 'if mask_type == "A":\n', 'if mask_type == "B":\n'),
    ("PixelCNN keeps the pixel right of the centre", "pixelcnn_mask",
     "spatial[c, c + 1:] = 0.0", "spatial[c, c + 2:] = 0.0"),
    ("PixelCNN mask always float32", "pixelcnn_mask",
     "return mask.to(torch.get_default_dtype()).clone()", "return mask.float().clone()"),
    ("coupling without tanh in forward", "AffineCoupling",
     "        s = torch.tanh(s)\n        y = mask", "        y = mask"),
    ("coupling log_det summed over all dims", "AffineCoupling",
     "log_det = ((1.0 - mask) * s).sum(dim=-1)", "log_det = s.sum(dim=-1)"),
    ("coupling inverse with exp(s)", "AffineCoupling",
     "(y - t) * torch.exp(-s)", "(y - t) * torch.exp(s)"),
    ("coupling conditioner sees the unmasked input", "AffineCoupling",
     "s, t = self.net(x * mask).chunk(2, dim=-1)", "s, t = self.net(x).chunk(2, dim=-1)"),
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
