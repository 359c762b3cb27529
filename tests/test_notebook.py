"""Notebooks as students write them: IPython's transformation, what runs, what is dropped, and why."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback

import nbformat
import pytest

from conftest import ROOT
from grader.notebook import convert_notebook
from grader.submission import SubmissionError, load_submission, submission_from_bytes


def notebook(*sources: str, outputs: dict[int, list] | None = None) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Homework\nMy solution.")]
    for i, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        cell.outputs = [nbformat.from_dict(o) for o in (outputs or {}).get(i, [])]
        nb.cells.append(cell)
    return nbformat.writes(nb).encode()


def run(*sources: str, functions=("f",)):
    """Convert a notebook, import the result, and return (namespace, notes, converted)."""
    converted = convert_notebook(notebook(*sources), "hw.ipynb", functions)
    namespace: dict = {"__name__": "hw"}
    exec(compile(converted.source, "hw.py", "exec"), namespace)
    return namespace, "\n".join(converted.notes), converted


def test_question_marks_in_comments_and_docstrings_are_code_not_help():
    ns, notes, _ = run(
        "import math\n\ndef f(x):\n"
        '    """Is this the KL?\n    Returns a float."""\n'
        "    term = 2.0 * x\n"
        "    term = 0.5 * term  # is the 0.5 right?\n"
        "    return term",
        "f?",
        "math.log??",
    )
    assert ns["f"](3.0) == 3.0
    assert ns["f"].__doc__.startswith("Is this the KL?")
    assert "code cell 2, line 1: `f?` not run (IPython help" in notes
    assert "code cell 3, line 1: `math.log??` not run (IPython help" in notes


def test_time_and_capture_cells_run_their_body_other_cell_magics_do_not():
    ns, notes, _ = run(
        "%%time\nimport torch\n\ndef f(x):\n    return g(x) + h(x) + SCALE\n%time SCALE = 10",
        "\n%%capture captured\n!pip install einops\ndef g(x):\n    return 2 * x",
        "%%timeit\nh = lambda x: 0",
        "%%bash\necho not python",
        "def h(x):\n    return 0",
    )
    assert ns["f"](1) == 12
    assert "code cell 2, line 3: `!pip install einops` not run (a shell command" in notes
    assert "code cell 3, line 1: the `%%timeit` cell was not run (of the cell magics, only %%capture, %%time run" in notes
    assert "code cell 4, line 1: the `%%bash` cell was not run" in notes


def test_what_the_graded_functions_reach_runs_and_top_level_work_does_not():
    ns, notes, conv = run(
        "import math, functools\nimport torch\nfrom torch import nn\nimport matplotlib.pyplot as plt",
        "LOG2PI = math.log(2 * math.pi)\nHIDDEN = [int(math.sqrt(64)), 4]\nCONFIG = {'beta': 1.0}\nCONFIG['beta'] = 2",
        "class Encoder(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.net = nn.Sequential(*[nn.Linear(2, h) for h in HIDDEN[:1]])\n"
        "    def forward(self, x):\n        return self.net(x)",
        "LAYERS = []\nfor width in HIDDEN:\n    LAYERS.append(width)\nsquare = lambda v: v * v\n"
        "scaled = functools.partial(torch.mul, other=CONFIG['beta'])",
        "def f(x):\n    enc = Encoder()\n    return LOG2PI, len(LAYERS), square(3), scaled(torch.tensor(2.0)), enc(torch.zeros(1, 2)).shape",
        "model = Encoder()\nopt = torch.optim.Adam(model.parameters())\nfor epoch in range(10 ** 9):\n"
        "    opt.step()\nplt.plot([1, 2])\nplt.show()",
        "def unrelated():\n    return model",
    )
    log2pi, layers, sq, sc, shape = ns["f"](None)
    assert (round(log2pi, 4), layers, sq, float(sc), tuple(shape)) == (1.8379, 2, 9, 4.0, (1, 8))
    assert "model" not in ns and "unrelated" not in ns
    assert "code cell 6, line 1: `model = Encoder()` not run (top-level code no graded function needs)" in notes
    assert "code cell 6, line 3: `for epoch in range(10 ** 9):` not run" in notes
    assert "code cell 6, line 5: `plt.plot([1, 2])` not run" in notes
    assert "code cell 7, line 1: `def unrelated():` not run" in notes
    assert "class Encoder" not in notes and "LOG2PI" not in notes  # reached: nothing to say


def test_a_call_that_sets_a_needed_global_runs():
    ns, notes, _ = run("def setup():\n    global RATE\n    RATE = 0.5\nsetup()\ntrain = setup()",
                       "def f(x):\n    return RATE * x")
    assert ns["f"](4) == 2.0
    assert "code cell 1, line 4" not in notes  # `setup()` ran


def test_cells_run_in_document_order_and_a_name_used_before_its_cell_is_explained():
    ns, _, _ = run("def f(x):\n    return x * SCALE", "SCALE = 3")  # defined later, used only when called
    assert ns["f"](2) == 6
    converted = convert_notebook(notebook("import math\nSCALE = math.log(BASE)\ndef f(x):\n    return SCALE",
                                          "BASE = 10.0"), "vae.ipynb", ["f"])
    with pytest.raises(NameError):
        exec(compile(converted.source, "vae.py", "exec"), {})
    sub = submission_from_bytes(notebook("import math\nSCALE = math.log(BASE)\ndef f(x):\n    return SCALE",
                                         "BASE = 10.0"), "vae", functions=["f"], name="vae.ipynb")
    line = next(n for n, o in sub.notebook.line_map.items() if o.text.startswith("SCALE"))
    message = sub.explain(f'vae.py could not be imported: NameError: name \'BASE\' is not defined\n'
                          f'  File "vae.py", line {line}, in <module>\n    SCALE = math.log(BASE)\n')
    assert 'File "vae.ipynb", code cell 1, line 2, in <module>' in message
    assert message.startswith("vae.ipynb could not be imported")
    assert "BASE is set in code cell 2, line 1, below the code that uses it" in message


def test_a_name_whose_binding_was_dropped_says_where_and_why():
    sub = submission_from_bytes(notebook(
        "import torch\nfiles = !ls data\ndef f(x):\n    return files, helper(x)",
        "def helper(x:\n    return x",
    ), "vae", functions=["f"], name="vae.ipynb")
    message = sub.explain("f raised NameError: name 'helper' is not defined\n"
                          "NameError: name 'files' is not defined")
    assert "helper: code cell 2 has a syntax error on line 1 (`def helper(x:`), so it did not run" in message
    assert "files: code cell 1, line 2 sets it with a shell command (`files = !ls data`)" in message
    missing = sub.explain("f is not defined in vae.py (define it with exactly this name)")
    assert missing.startswith("f is not defined in vae.ipynb")
    syntax = submission_from_bytes(notebook("def f(x):\n    return x +\n"), "vae", functions=["f"], name="vae.ipynb")
    assert "f: code cell 1 has a syntax error on line 2" in syntax.explain("f is not defined in vae.py")


def test_syntax_error_cell_is_skipped_whole_with_a_note_and_the_rest_runs():
    ns, notes, _ = run("def f(x):\n    return g(x)", "def g(x):\n    return x + 1", "def broken(:\n    pass\ng = 3")
    assert ns["f"](1) == 2
    assert "code cell 3: syntax error on line 1" in notes and "the whole cell was skipped" in notes


def test_imports_nothing_needs_never_break_grading():
    ns, notes, conv = run(
        "!pip install torchvision\nimport json\nimport torchvision\nfrom google.colab import drive\n"
        "drive.mount('/content/drive')\nimport no_such_package_anywhere as nope\ndef f(x):\n    return json.dumps(x)",
    )
    assert ns["f"]([1]) == "[1]"
    assert "code cell 1, line 3: `import torchvision` not run (torchvision is not installed in the grader, " \
           "and no graded function uses it)" in notes or "torchvision" not in notes  # installed here: kept, in a try
    assert "`from google.colab import drive` not run (google.colab is not installed" in notes
    assert "`drive.mount('/content/drive')` not run" in notes
    assert "no_such_package_anywhere is not installed" in notes
    needed = convert_notebook(notebook("import no_such_package_anywhere\ndef f():\n    return no_such_package_anywhere"),
                              "hw.ipynb", ["f"])
    assert "\nimport no_such_package_anywhere\n" in needed.source  # reached: its failure is the student's error


def test_line_map_points_at_the_students_cell_and_line():
    sub = submission_from_bytes(notebook(
        "%matplotlib inline\nimport torch",
        "%%time\n# the KL\ndef f(x):\n    y = x * 2\n    return y.undefined_attribute",
    ), "vae", functions=["f"], name="vae (2).ipynb")
    namespace: dict = {}
    exec(compile(sub.files["vae.py"].decode(), "vae.py", "exec"), namespace)
    with pytest.raises(AttributeError) as info:
        namespace["f"](namespace["torch"].zeros(1))
    tb = "".join(traceback.format_exception(info.value))
    text = sub.explain(tb)
    assert 'File "vae (2).ipynb", code cell 2, line 5, in f' in text
    assert sub.notes[0] == "graded vae (2).ipynb as vae.ipynb (no file is named vae.py or vae.ipynb)"


def test_big_outputs_do_not_count_and_the_code_is_capped(tmp_path):
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0K" * (20 << 17)}}
    path = tmp_path / "vae.ipynb"
    path.write_bytes(notebook("def f(x):\n    return x", "import matplotlib.pyplot as plt\nplt.plot([1])",
                              outputs={1: [image]}))
    assert path.stat().st_size > 20 << 20
    sub = load_submission(path, "vae", functions=["f"])
    assert "def f(x)" in sub.files["vae.py"].decode() and len(sub.files) == 1
    huge = notebook("X = 1\n" + "Y = 'x'\n" * (1 << 20))  # 8 MB of code
    with pytest.raises(SubmissionError, match=r"the code of vae.ipynb is larger than 5 MB"):
        submission_from_bytes(huge, "vae", name="vae.ipynb")


def test_empty_and_corrupt_notebooks_name_the_students_file(tmp_path):
    with pytest.raises(SubmissionError, match=r"^vae_v2.ipynb is an empty notebook"):
        submission_from_bytes(notebook("", "   \n"), "vae", name="vae_v2.ipynb")
    bad = tmp_path / "vae_v2.ipynb"
    bad.write_text('{"cells": [')
    with pytest.raises(SubmissionError, match=r"^vae_v2.ipynb is not a readable notebook"):
        load_submission(bad, "vae")


def test_a_check_failing_on_a_dropped_binding_says_where_and_why(tmp_path, grade_with):
    path = tmp_path / "vae.ipynb"
    path.write_bytes(notebook(
        "import torch\nimport math",
        "CORES = !nproc\n\ndef log_mean_exp(x, dim):\n"
        "    # is this stable?\n    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim]) + 0 * len(CORES)",
    ))
    g = grade_with("hw2_vae", path, functions=("log_mean_exp",), hidden=False, fast=True)
    output = next(r.output for r in g.results if not r.passed)
    assert 'File "vae.ipynb", code cell 2, line 5, in log_mean_exp' in output
    assert "CORES: code cell 2, line 1 sets it with a shell command (`CORES = !nproc`)" in output
    assert 'vae.py"' not in output


# ------------------------------------------------------------------ end to end: hw2 as students write it

VAE_NOTEBOOK = [
    "!pip install -q torch torchvision\n%matplotlib inline\n%load_ext autoreload\n%autoreload 2",
    "from google.colab import drive\ndrive.mount('/content/drive')",
    "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nfrom functools import partial\n"
    "import torchvision\nimport matplotlib.pyplot as plt\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'",
    "LOG2PI = math.log(2.0 * math.pi)  # computed once; is float64 enough?\nsum_last = partial(torch.sum, dim=-1)",
    "torch.logsumexp?",
    "%%time\ndef kl_normal(q_mean, q_log_var, p_mean, p_log_var):\n"
    '    """KL(q || p) for diagonal Gaussians?\n    Summed over the last dim."""\n'
    "    var_ratio = torch.exp(q_log_var - p_log_var)\n"
    "    mean_term = (q_mean - p_mean) ** 2 * torch.exp(-p_log_var)\n"
    "    kl = 0.5 * (p_log_var - q_log_var + var_ratio + mean_term - 1.0)  # is the 0.5 right?\n"
    "    return sum_last(kl)",
    "def sample_gaussian(mean, log_var, eps=None):\n    std = torch.exp(0.5 * log_var)\n    if eps is None:\n"
    "        shape = torch.broadcast_shapes(mean.shape, log_var.shape)\n"
    "        eps = torch.randn(shape, dtype=mean.dtype, device=mean.device)\n    return mean + std * eps\n\n"
    "z = sample_gaussian(torch.zeros(3), torch.zeros(3))\nprint(z)",
    "%%capture\ndef log_bernoulli_with_logits(x, logits):\n"
    "    log_p = x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits)\n    return log_p.sum(-1)",
    "def negative_iwae_bound(model, x, k):\n    mean, log_var = model.encode(x)\n"
    "    eps = torch.randn((k,) + tuple(mean.shape), dtype=mean.dtype, device=mean.device)\n"
    "    z = sample_gaussian(mean, log_var, eps)\n    logits = model.decode(z)\n"
    "    log_px_given_z = log_bernoulli_with_logits(x, logits)\n"
    "    log_pz = -0.5 * (z ** 2 + LOG2PI).sum(-1)\n"
    "    log_qz = -0.5 * (eps ** 2 + log_var + LOG2PI).sum(-1)\n"
    "    return -log_mean_exp(log_px_given_z + log_pz - log_qz, dim=0).mean()",
    "def log_mean_exp(x, dim):\n    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])",
    "def negative_elbo_bound(model, x):\n    mean, log_var = model.encode(x)\n"
    "    z = sample_gaussian(mean, log_var)\n    rec = -log_bernoulli_with_logits(x, model.decode(z)).mean()\n"
    "    zeros = torch.zeros_like(mean)\n    kl = kl_normal(mean, log_var, zeros, zeros).mean()\n"
    "    return kl + rec, kl, rec",
    "class VAE(nn.Module):\n    def __init__(self, d=784, z=2):\n        super().__init__()\n"
    "        self.enc, self.dec = nn.Linear(d, 2 * z), nn.Linear(z, d)\n"
    "    def encode(self, x):\n        return self.enc(x).chunk(2, -1)\n"
    "    def decode(self, z):\n        return self.dec(z)",
    "data = torchvision.datasets.MNIST('/content/drive/MyDrive/data', download=True)\nmodel = VAE().to(device)\n"
    "opt = torch.optim.Adam(model.parameters(), lr=1e-3)\nfor epoch in range(10 ** 9):\n"
    "    loss = negative_elbo_bound(model, torch.rand(64, 784))[0]\n    opt.zero_grad(); loss.backward(); opt.step()",
    "def plot_latent(model:\n    plt.scatter(*model.encode(x)[0].T)",
    "samples = model.decode(torch.randn(16, 2)).sigmoid()\nplt.imshow(samples[0].view(28, 28).detach())\nplt.show()",
    "files = !ls /content/drive",
]


@pytest.mark.slow
def test_a_correct_hw2_notebook_as_students_write_it_gets_full_marks(tmp_path):
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0K" * (20 << 17)}}
    path = tmp_path / "VAE_final (1).ipynb"
    path.write_bytes(notebook(*VAE_NOTEBOOK, outputs={len(VAE_NOTEBOOK) - 2: [image]}))
    out = tmp_path / "results.json"
    env = {**os.environ, "COLUMNS": "250"}
    result = subprocess.run([sys.executable, "-m", "grader", "grade", str(path), "-a", "hw2_vae", "--sandbox", "process",
                             "--out", str(out), "-q"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    public = [t for t in results["tests"] if t["visibility"] == "visible"]
    lost = [(t["name"], t["output"][:500]) for t in results["tests"] if t["status"] != "passed"]
    assert not lost, lost
    assert sum(t["score"] for t in public) == sum(t["max_score"] for t in public) == 35
    summary = results["output"]
    assert "graded VAE_final (1).ipynb as vae.ipynb" in summary
    assert "code cell 13, line 4: `for epoch in range(10 ** 9):` not run" in summary
    assert "code cell 14: syntax error on line 1" in summary
    assert "code cell 2, line 1: `from google.colab import drive` not run" in summary
