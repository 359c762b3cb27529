"""hw3_flows public checks: properties that need no reference implementation.

Students run these with `dgm-grade check flows.py`. Expected values come from
definitions computed here in the judge: autograd Jacobians of networks built
from the student's masks, the handout's degree rules tested on the student's
masks, the student's own Jacobians (vector-Jacobian products returned by the
worker) and finite differences of the student's own outputs, Gaussian
densities known in closed form, and quadrature over 1-D and 2-D grids. The
coupling layer is always the student's class, built in the worker around a
conditioner fixture. Nothing here computes a graded function: where only a
function's definition pins its value (the coupling's formula, the PixelCNN
mask's pattern), the pin is a hidden check.

Value pins: a check of a consistency property or a special case names, in
``requires``, the checks that pin the function's value on generic inputs, and
scores only when they pass (``grader.judge.apply_requirements``):

- made_masks: ``made_degrees`` (the masks follow the handout's connection rules
  for some hidden degrees) and ``made_connected`` (wide layers reach every
  allowed input), each requiring the other;
- pixelcnn_mask: the public ``pixel_causal`` (no later pixel is seen) and the hidden
  ``pixel_complete`` (every earlier pixel of the window is seen; together: exactly the
  mask), each requiring the other. The mask's pattern itself is a graded value, so
  the check that every allowed position is 1 is hidden; under ``check`` the public
  ones are not gated;
- AffineCoupling: the hidden comparisons with the reference
  (``coupling_forward_matches_reference``, ``coupling_inverse_matches_reference``),
  so under ``check`` these public checks are not gated;
- flow_log_prob: ``flow_gaussian`` (the density of a flow whose density is known).

Failure messages quote the handout (the docstrings of flows.py).
"""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import describe, expect, expect_close, expect_tensor, expect_tuple, expect_unchanged
from grader.strategies import dtypes, tensors
from grader.verify import expect_derivative

from .models import (
    F64,
    ConvCase,
    CouplingCase,
    FlowCase,
    MadeCase,
    affine_layer,
    conditioner,
    conv_dependence,
    coupling,
    degree_conflict,
    forbidden_pixels,
    gaussian_of,
    linear_layer,
    made_jacobian,
    mask_product,
    random_orthogonal,
    tanh_layer,
    trapezoid_weights,
)

checks = Checks()

MADE_PINS = ("made_degrees", "made_connected")
PIXEL_PINS = ("pixel_causal", "pixel_complete")  # pixel_complete: hidden (checks_hidden.py)
COUPLING_FORWARD_PIN = "coupling_forward_matches_reference"  # hidden (checks_hidden.py)
COUPLING_PINS = (COUPLING_FORWARD_PIN, "coupling_inverse_matches_reference")
FLOW_PINS = ("flow_gaussian",)


def name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------------- made_masks


@st.composite
def made_configs(draw, *, max_d: int = 8, wide: bool = False, max_layers: int = 3) -> MadeCase:
    """made_masks arguments; order None, a list or a long tensor.

    wide: every hidden layer has at least D - 1 units (full connectivity is then required).
    """
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(0, max_layers))
    low = max(d - 1, 1) if wide else 1
    hidden = draw(st.lists(st.integers(low, low + (6 if wide else 11)), min_size=n, max_size=n))
    perm = draw(st.permutations(list(range(d))))
    kind = draw(st.sampled_from(["default", "list", "tensor"]))
    return MadeCase(d, hidden, None if kind == "default" else list(perm) if kind == "list" else torch.tensor(perm))


def expect_masks(value, d: int, hidden: list[int]) -> list[torch.Tensor]:
    """A list of len(hidden) + 1 float 0/1 masks shaped like the nn.Linear weights; returned in float64."""
    what = f"made_masks({d}, {hidden}, ...)"
    handout = 'handout: "Return one float 0/1 mask per linear layer, shaped like that layer\'s weight ([out, in])"'
    expect(isinstance(value, (list, tuple)),
           f"{what}: got a {describe(value)}, expected a list of {len(hidden) + 1} masks ({handout})")
    expect(len(value) == len(hidden) + 1,
           f"{what}: got {len(value)} masks, expected {len(hidden) + 1} "
           f"(one per linear layer, the output layer included; {handout})")
    sizes = [d, *hidden, d]
    masks = []
    for layer, (m, n_in, n_out) in enumerate(zip(value, sizes[:-1], sizes[1:])):
        what_m = f"mask {layer} (of nn.Linear({n_in}, {n_out}), whose weight is [{n_out}, {n_in}])"
        m = expect_tensor(m, shape=(n_out, n_in), what=what_m)
        expect(m.is_floating_point(), f"{what_m}: got dtype {name(m.dtype)}, expected a float tensor of 0s and 1s "
                                      f"({handout})")
        expect(bool(((m == 0) | (m == 1)).all()),
               f"{what_m}: entries must be 0 or 1; got values {m.unique().tolist()[:6]} ({handout})")
        masks.append(m.double())
    return masks


def masks_of(student, case: MadeCase) -> list[torch.Tensor]:
    return expect_masks(student.made_masks(case.in_features, case.hidden_sizes, case.order), case.in_features,
                        case.hidden_sizes)


@checks.add("made_masks", "one float 0/1 mask per linear layer, shaped like nn.Linear.weight [out, in]",
            requires=MADE_PINS)
@given(case=made_configs())
def made_shapes(student, case):
    masks_of(student, case)


@checks.add("made_masks", "the masked network is autoregressive: d out_i / d in_j = 0 unless order[j] < order[i]",
            points=3, requires=MADE_PINS)
@given(case=made_configs(), weights_seed=st.integers(0, 2**16))
def made_autoregressive(student, case, weights_seed):
    """A tanh MLP with random weights, each layer's weight multiplied by the student's mask;
    its Jacobian (autograd, here in the judge) must vanish wherever order[j] >= order[i]."""
    masks, order, d = masks_of(student, case), case.order_tensor, case.in_features
    gen = torch.Generator().manual_seed(weights_seed)
    jac = made_jacobian(masks, torch.randn(d, generator=gen, dtype=F64), gen)
    forbidden = order[None, :] >= order[:, None]  # [i, j]
    bad = (jac != 0) & forbidden
    if bool(bad.any()):
        i, j = (int(v) for v in bad.nonzero()[0])
        expect(False, f"output {i} (order {int(order[i])}) depends on input {j} (order {int(order[j])}) through the "
                      f"masked network (handout: \"Then output i depends only on inputs j with order[j] < "
                      f"order[i]\"); mask product (paths from input j to output i):\n{mask_product(masks).long()}\n"
                      f"order = {order.tolist()}")


@checks.add("made_masks", "every allowed input reaches its output when every hidden layer has >= in_features - 1 units",
            points=2, requires=("made_degrees",))
@given(case=made_configs(wide=True))
def made_connected(student, case):
    """Judged on the 0/1 mask products (number of paths from input j to output i), not on a
    network's Jacobian: a dead unit can cut a path in a correct network."""
    masks, order, d = masks_of(student, case), case.order_tensor, case.in_features
    paths = mask_product(masks)
    allowed = order[None, :] < order[:, None]
    missing = allowed & (paths == 0)
    if bool(missing.any()):
        i, j = (int(v) for v in missing.nonzero()[0])
        expect(False, f"with hidden_sizes={case.hidden_sizes} (all >= in_features - 1 = {d - 1}), output {i} (order "
                      f"{int(order[i])}) has no path from input {j} (order {int(order[j])}); handout: choose the "
                      f"hidden degrees \"so that every layer with at least in_features - 1 units uses every degree\" "
                      f"0 .. in_features - 2. Paths per (output, input):\n{paths.long()}\norder = {order.tolist()}")


@checks.add("made_masks", "every mask follows the handout's connection rules for some choice of hidden degrees",
            points=2, requires=("made_connected",))
@given(case=made_configs())
def made_degrees(student, case):
    """Input j has degree order[j]; a hidden unit of degree m sees a previous unit of degree m'
    iff m >= m'; output i sees a hidden unit of degree m iff order[i] > m. Some integer degree
    for every hidden unit must make all entries hold (``models.degree_conflict``: the entries
    are difference constraints; any integers are accepted, the handout's 0 .. D - 2 included)."""
    masks, order = masks_of(student, case), case.order_tensor
    conflict = degree_conflict(masks, order)
    if conflict is not None:
        expect(False, "no choice of hidden degrees gives these masks. Handout: \"a hidden unit of degree m connects "
                      "to a previous unit of degree m' iff m >= m'\" and \"output i (degree order[i]) connects to a "
                      "hidden unit of degree m iff order[i] > m (strict!)\", with input j of degree order[j]; these "
                      "entries contradict one another:\n  " + "\n  ".join(conflict)
                      + f"\norder = {order.tolist()}")


@checks.add("made_masks", "with no hidden layers: a single [D, D] mask with entry [i, j] = 1 iff order[j] < order[i]",
            requires=MADE_PINS)
@given(case=made_configs(max_layers=0))
def made_no_hidden(student, case):
    (mask,) = masks_of(student, case)
    order = case.order_tensor
    expected = (order[None, :] < order[:, None]).double()
    expect_close(mask, expected, what=f"made_masks({case.in_features}, [], order={order.tolist()})[0] (handout: "
                                      "\"With hidden_sizes = [] there is a single [in_features, in_features] mask "
                                      "whose entry [i, j] is 1 iff order[j] < order[i]\")")


@checks.add("made_masks", "deterministic (the same masks from a second call, under either default dtype) and "
                          "leaves order unchanged", requires=MADE_PINS)
@given(case=made_configs(), default_dtype=dtypes())
def made_deterministic(student, case, default_dtype):
    d, hidden, order = case.in_features, case.hidden_sizes, case.order_tensor
    first = student.call("made_masks", d, hidden, order, default_dtype=default_dtype, return_inputs=True)
    again = student.call("made_masks", d, hidden, order, default_dtype=default_dtype, seed_offset=1)
    expect_unchanged(first, order)
    masks = expect_masks(first.value, d, hidden)
    n = len(hidden) + 1
    for layer, (m, m2) in enumerate(zip(masks, expect_tuple(again.value, n))):
        expect(isinstance(m2, torch.Tensor) and m2.shape == m.shape and torch.equal(m, m2.double()),
               f"mask {layer} changed between two calls with the same arguments (torch's default dtype "
               f"{name(default_dtype)}): handout: hidden degrees \"choose them deterministically, e.g. "
               "k mod (in_features - 1)\", not drawn at random")


# ---------------------------------------------------------------------- pixelcnn_mask


@st.composite
def conv_configs(draw, *, max_out: int = 4, max_in: int = 3, kernels: tuple[int, ...] = (1, 3, 5, 7)) -> ConvCase:
    return ConvCase(draw(st.integers(1, max_out)), draw(st.integers(1, max_in)), draw(st.sampled_from(kernels)),
                    draw(st.sampled_from(["A", "B"])))


def expect_conv_mask(value, case: ConvCase) -> torch.Tensor:
    handout = 'handout: "Returns: [out_channels, in_channels, k, k] float 0/1 tensor"'
    m = expect_tensor(value, shape=case.shape, what=f"{case} ({handout})")
    expect(m.is_floating_point(), f"{case}: got dtype {name(m.dtype)}, expected a float tensor of 0s and 1s "
                                  f"({handout})")
    expect(bool(((m == 0) | (m == 1)).all()),
           f"{case}: entries must be 0 or 1; got values {m.unique().tolist()[:6]} ({handout})")
    return m


@checks.add("pixelcnn_mask", "[out, in, k, k] float 0/1, the same spatial mask for every channel pair",
            requires=PIXEL_PINS)
@given(case=conv_configs())
def pixel_shape(student, case):
    m = expect_conv_mask(student.pixelcnn_mask(*case.args), case)
    expect(bool((m == m[:1, :1]).all()),
           f"{case}: every (output, input) channel pair must use the same spatial mask (handout: \"The same "
           "spatial mask is used for every (output, input) channel pair (no channel grouping)\")")


def pixel_offset(index: list[int], size: int) -> str:
    """'(dr, dc)' of an input pixel relative to the centre output pixel."""
    return f"(row {index[-2] - size // 2:+d}, column {index[-1] - size // 2:+d})"


@checks.add("pixelcnn_mask", "a masked conv2d is causal: no output pixel sees itself ('A') or any later pixel",
            points=2, requires=("pixel_complete",))
@given(case=conv_configs(), weights_seed=st.integers(0, 2**16))
def pixel_causal(student, case, weights_seed):
    """conv2d with random positive weights times the mask, here in the judge; autograd gives the
    input pixels the centre output pixel depends on, and none may come later in raster order
    (``models.forbidden_pixels``). All zeros would pass: the hidden ``pixel_complete`` pins the rest."""
    mask = expect_conv_mask(student.pixelcnn_mask(*case.args), case)
    size = 2 * case.kernel_size + 1
    seen = conv_dependence(mask, torch.Generator().manual_seed(weights_seed))
    bad = seen & forbidden_pixels(size, case.mask_type)
    if bool(bad.any()):
        idx = bad.nonzero()[0].tolist()
        centre = size // 2
        what = "itself" if idx[-2] == idx[-1] == centre else f"the pixel at {pixel_offset(idx, size)}"
        expect(False, f"{case}: output channel {idx[0]} at a pixel depends on {what} of input channel {idx[1]}. "
                      "Handout: \"everything below the centre row and right of the centre is 0. The centre itself "
                      "is 0 for mask_type == 'A'\"")


@checks.add("pixelcnn_mask", "mask 'B' minus mask 'A' is 1 at the centre of the window and 0 elsewhere",
            requires=PIXEL_PINS)
@given(case=conv_configs().map(lambda c: ConvCase(c.out_channels, c.in_channels, c.kernel_size, "B")))
def pixel_types_differ_at_centre(student, case):
    """The handout: the two types differ only in the centre, \"0 for mask_type == 'A' and 1 for 'B'\".
    Compares the student's two masks with each other; neither is computed here."""
    a, b = (expect_conv_mask(student.pixelcnn_mask(case.out_channels, case.in_channels, case.kernel_size, kind),
                             ConvCase(case.out_channels, case.in_channels, case.kernel_size, kind)).double()
            for kind in ("A", "B"))
    c = case.kernel_size // 2
    centre = torch.zeros(case.shape, dtype=F64)
    centre[:, :, c, c] = 1.0
    diff = b - a
    if not torch.equal(diff, centre):
        idx = (diff != centre).nonzero()[0].tolist()
        expect(False, f"pixelcnn_mask({case.out_channels}, {case.in_channels}, {case.kernel_size}, 'B') minus the "
                      f"same with 'A' is {diff[tuple(idx)].item():g} at [{', '.join(map(str, idx))}] (centre "
                      f"[{c}, {c}]); expected 1 at the centre and 0 elsewhere (handout: \"The centre itself is 0 for "
                      "mask_type == 'A' and 1 for 'B'\", the rest of the spatial mask is the same)")


@checks.add("pixelcnn_mask", "the same float 0/1 mask whether torch's default dtype is float32 or float64",
            requires=PIXEL_PINS)
@given(case=conv_configs())
def pixel_default_dtypes(student, case):
    masks = []
    for default_dtype in (torch.float32, torch.float64):
        value = student.call("pixelcnn_mask", *case.args, default_dtype=default_dtype).value
        masks.append(expect_conv_mask(value, case).double())
    expect(torch.equal(*masks), f"{case}: the mask with torch's default dtype float64 differs from the one with "
                                "float32; the handout defines the mask's 0/1 values whatever the dtype")


# ---------------------------------------------------------------------- AffineCoupling

@st.composite
def coupling_cases(draw, dtype=dtypes(), *, mixed: bool = True, max_d: int = 6, max_b: int = 5) -> CouplingCase:
    """The layer's mask [D], a random tanh MLP conditioner [B, D] -> [B, 2D] and x [B, D], all in one dtype.

    mixed: the mask has both 0s and 1s (so D >= 2).
    """
    dtype = draw(dtype)
    if mixed:
        d = draw(st.integers(2, max_d))
        ones = draw(st.integers(1, d - 1))
        perm = draw(st.permutations(list(range(d))))
        mask = torch.zeros(d, dtype=dtype)
        mask[list(perm[:ones])] = 1.0
    else:
        d = draw(st.integers(1, max_d))
        mask = torch.tensor(draw(st.lists(st.booleans(), min_size=d, max_size=d)), dtype=dtype)
    hidden = draw(st.sampled_from([[], [8], [16, 16]]))
    scale = draw(st.sampled_from([0.3, 1.0, 2.0]))
    seed = draw(st.integers(0, 2**16))
    net, _ = conditioner(d, hidden, dtype, torch.Generator().manual_seed(seed), scale)
    x = draw(tensors((draw(st.integers(1, max_b)), d), dtype, low=-3, high=3))
    about = f"mlp({[d, *hidden, 2 * d]}, tanh, weights ~ N(0, {scale}^2) from seed {seed})"
    return CouplingCase(mask, net, x, about)


def forward(student, mask, net, x, **kwargs):
    """The student's AffineCoupling(mask, net).forward(x): (CallResult, y, log_det), checked for shape and dtype."""
    r = student.call("AffineCoupling.forward", coupling(mask, net), x, **kwargs)
    y, log_det = expect_tuple(r.value, 2, what="forward(x), expected (y, log_det) (handout: \"Returns: (y, "
                                               "log_det) with y: [B, D] and log_det: [B]\")")
    y = expect_tensor(y, shape=x.shape, dtype=x.dtype, what="y = forward(x)[0] (handout: \"y: [B, D]\"; "
                                                            "\"keep the dtype and device of the inputs\")")
    log_det = expect_tensor(log_det, shape=x.shape[:1], dtype=x.dtype,
                            what="log_det = forward(x)[1] (handout: \"log_det: [B]\", one per example)")
    return r, y, log_det


def inverse(student, mask, net, y, **kwargs):
    """The student's AffineCoupling(mask, net).inverse(y): (CallResult, x), checked for shape and dtype."""
    r = student.call("AffineCoupling.inverse", coupling(mask, net), y, **kwargs)
    return r, expect_tensor(r.value, shape=y.shape, dtype=y.dtype,
                            what="inverse(y) (handout: \"y: [B, D] -> x: [B, D]\", in the input's dtype)")


def slack(dtype: torch.dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 1e-10


@checks.add("AffineCoupling", "forward returns (y [B, D], log_det [B]) and inverse [B, D], in the input dtype, "
                              "and neither changes its inputs", requires=COUPLING_PINS)
@given(case=coupling_cases(mixed=False))
def coupling_shapes(student, case):
    r, _, _ = forward(student, case.mask, case.net, case.x, return_inputs=True)
    expect_unchanged(r, case.mask, case.x)
    r, _ = inverse(student, case.mask, case.net, case.x, return_inputs=True)
    expect_unchanged(r, case.mask, case.x)


@checks.add("AffineCoupling", "forward leaves the masked entries (mask == 1) unchanged",
            requires=(COUPLING_FORWARD_PIN,))
@given(case=coupling_cases(mixed=False))
def coupling_masked_identity(student, case):
    mask, x = case.mask, case.x
    _, y, _ = forward(student, mask, case.net, x)
    keep = mask.bool()
    expect_close(y[:, keep], x[:, keep], what=f"y[:, mask == 1] (mask = {mask.tolist()}; handout: \"entries with 1 "
                                              "pass through unchanged\")")


@checks.add("AffineCoupling", "inverse(forward(x)) = x and forward(inverse(y)) = y", points=2, requires=COUPLING_PINS)
@given(case=coupling_cases())
def coupling_inverse(student, case):
    mask, net, x = case.mask, case.net, case.x
    _, y, _ = forward(student, mask, net, x)
    tol = dict(atol=slack(x.dtype) * 10) if x.dtype == torch.float32 else {}
    expect_close(inverse(student, mask, net, y)[1], x, what=f"inverse(forward(x)) (mask = {mask.tolist()}; handout: "
                                                            "\"Invert forward\")", **tol)
    _, u = inverse(student, mask, net, x)
    _, back, _ = forward(student, mask, net, u)
    expect_close(back, x, what=f"forward(inverse(y))[0] (mask = {mask.tolist()})", **tol)


def coupling_jacobians(student, mask, net, x) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example Jacobians dy/dx [B, D, D] of the student's forward, and log_det [B], in one call.

    Each example is repeated D times and copy i gets the cotangent e_i, so the
    gradient with respect to copy i is row i of that example's Jacobian. The worker
    reports it; in float64 the judge verifies it against differences of forward's
    values along a direction it draws after the reply (``expect_derivative``), so a
    forged Jacobian cannot make a wrong log_det pass.
    """
    b, d = x.shape
    rep = x.repeat_interleave(d, 0)
    cot = torch.eye(d, dtype=x.dtype).repeat(b, 1)
    r, _, log_det = forward(student, mask, net, rep, wrt=(rep,), output=(0,), cotangent=cot)
    grad = r.grad(rep)
    expect(grad is not None, "y = forward(x)[0] does not depend on x through autograd (no gradient reached x; "
                             "handout: \"keep everything differentiable\")")
    if x.dtype == F64:  # the worker reports the Jacobian: verify it against forward's own values
        expect_derivative(student, "AffineCoupling.forward", (coupling(mask, net), rep), r, rep, output=(0,),
                          cotangent=cot, what=f"the Jacobian dy/dx of forward (mask = {mask.tolist()})")
    return grad.reshape(b, d, d), log_det[::d]


@checks.add("AffineCoupling", "log_det equals log|det dy/dx| of the autograd Jacobian", points=3,
            requires=(COUPLING_FORWARD_PIN,))
@given(case=coupling_cases())
def coupling_log_det(student, case):
    mask, x = case.mask, case.x
    jac, log_det = coupling_jacobians(student, mask, case.net, x)
    expected = torch.linalg.slogdet(jac.double())[1]
    expect_close(log_det, expected.to(x.dtype), what=f"log_det vs log|det J| (mask = {mask.tolist()}; handout: "
                                                     "\"log_det = ... # log |det dy/dx|, [B]\")",
                 atol=slack(x.dtype) * x.shape[1])


@checks.add("AffineCoupling", "Jacobian: transformed entries depend on the other transformed entries not at all, "
                              "on themselves with slope exp(tanh(s)) in [1/e, e]", points=2,
            requires=(COUPLING_FORWARD_PIN,))
@given(case=coupling_cases())
def coupling_jacobian_structure(student, case):
    mask, x = case.mask, case.x
    jac, _ = coupling_jacobians(student, mask, case.net, x)
    free = ~mask.bool()
    block = jac[:, free][:, :, free].double()
    diag = torch.diagonal(block, dim1=-2, dim2=-1)
    off = block - torch.diag_embed(diag)
    expect(bool((off.abs() <= slack(x.dtype)).all()),
           f"d y_i / d x_j is {off.abs().max().item():.3g} for two different transformed entries i, j (mask == 0): "
           f"handout: \"s, t = net(x * mask).chunk(2, dim=-1)\", so s and t see only the masked entries "
           f"(mask = {mask.tolist()})")
    low, high = math.exp(-1) * (1 - 1e-5), math.exp(1) * (1 + 1e-5)
    expect(bool(((diag >= low) & (diag <= high)).all()),
           f"d y_i / d x_i of a transformed entry must be exp(s_i) with s = tanh(...), in [1/e, e]; got values in "
           f"[{diag.min().item():.4g}, {diag.max().item():.4g}] (handout: \"s = tanh(s)\", \"x * exp(s) + t\")")


def inverse_jacobians(student, mask, net, y) -> torch.Tensor:
    """Per-example Jacobians d inverse(y) / dy [B, D, D], one call (as coupling_jacobians)."""
    b, d = y.shape
    rep = y.repeat_interleave(d, 0)
    cot = torch.eye(d, dtype=y.dtype).repeat(b, 1)
    r, _ = inverse(student, mask, net, rep, wrt=(rep,), cotangent=cot)
    grad = r.grad(rep)
    expect(grad is not None, "inverse(y) does not depend on y through autograd (no gradient reached y; handout: "
                             "\"keep everything differentiable\")")
    if y.dtype == F64:  # as in coupling_jacobians
        expect_derivative(student, "AffineCoupling.inverse", (coupling(mask, net), rep), r, rep, cotangent=cot,
                          what=f"the Jacobian of inverse (mask = {mask.tolist()})")
    return grad.reshape(b, d, d)


@checks.add("AffineCoupling", "inverse is differentiable: its Jacobian is the inverse of forward's",
            requires=COUPLING_PINS)
@given(case=coupling_cases())
def coupling_inverse_jacobian(student, case):
    mask, net, x = case.mask, case.net, case.x
    _, y, _ = forward(student, mask, net, x)
    jac_f, _ = coupling_jacobians(student, mask, net, x)
    jac_inv = inverse_jacobians(student, mask, net, y)
    eye = torch.eye(x.shape[1], dtype=F64).expand_as(jac_f)
    scale = float(jac_inv.abs().max() * jac_f.abs().max()) * x.shape[1]  # rounding grows with the entries
    expect_close(jac_inv.double() @ jac_f.double(), eye, what="J_inverse(y) @ J_forward(x) (should be the identity; "
                                                              "handout: \"keep everything differentiable\")",
                 atol=(1e-6 if x.dtype == torch.float32 else 1e-13) * scale + slack(x.dtype))


@checks.add("AffineCoupling", "differentiable in the conditioner's parameters: the gradients of y and log_det "
                              "agree with central differences of forward", requires=(COUPLING_FORWARD_PIN,))
@given(data=st.data(), case=coupling_cases(dtype=st.just(F64)))
def coupling_parameter_gradients(student, data, case):
    """The gradients of <cot, y> and <cot, log_det> with respect to the conditioner's weights (autograd,
    in the worker) agree with differences of the student's own forward along a direction the judge
    draws after the reply (``expect_derivative``): no definition needed, and gradients that are 0
    where tanh saturates are right."""
    mask, net, x = case.mask, case.net, case.x
    for index, what, shape in ((0, "y", x.shape), (1, "log_det", x.shape[:1])):
        cot = data.draw(tensors(shape, F64, low=-2, high=2), label=f"cotangent_{what}")
        layer = coupling(mask, net)
        r, _, _ = forward(student, mask, net, x, wrt=(net,), output=(index,), cotangent=cot)
        expect_derivative(student, "AffineCoupling.forward", (layer, x), r, net, output=(index,), cotangent=cot,
                          what=f"d <cot, {what}> / d (conditioner weights) (mask = {mask.tolist()}; handout: "
                               "\"keep everything differentiable\": use the net you were given inside the autograd "
                               "graph)")


# ---------------------------------------------------------------------- flow_log_prob


@st.composite
def gaussian_flows(draw, dtype=dtypes(), *, max_d: int = 4, max_layers: int = 4, max_b: int = 6) -> FlowCase:
    """A chain of affine and linear fixture layers (a Gaussian flow) and data x [B, D]."""
    dtype = draw(dtype)
    d = draw(st.integers(1, max_d))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    layers = []
    for _ in range(draw(st.integers(1, max_layers))):
        if draw(st.booleans()):
            shift = torch.rand(d, generator=gen, dtype=F64) * 4 - 2
            log_scale = torch.rand(d, generator=gen, dtype=F64) * 2 - 1
            layers.append(affine_layer(shift.to(dtype), log_scale.to(dtype)))
        else:
            u = torch.rand(d, generator=gen, dtype=F64) * 1.4 - 0.7
            weight = random_orthogonal(d, gen) * u.exp()
            bias = torch.rand(d, generator=gen, dtype=F64) * 4 - 2
            layers.append(linear_layer(weight.to(dtype), bias.to(dtype)))
    x = draw(tensors((draw(st.integers(1, max_b)), d), dtype, low=-4, high=4))
    return FlowCase(layers, x)


def log_prob_of(student, layers, x, **kwargs):
    r = student.call("flow_log_prob", layers, x, **kwargs)
    return r, expect_tensor(r.value, shape=x.shape[:1], dtype=x.dtype,
                            what="flow_log_prob(layers, x) (handout: \"Returns: [B] log p(x)\", in x's dtype)")


FLOW_HANDOUT = "handout: \"log p(x) = log N(z; 0, I) + sum_l log_det_l\", pushing x through the layers in order"


@checks.add("flow_log_prob", "with no layers: the N(0, I) log density, [B] in the input dtype, inputs unchanged",
            requires=FLOW_PINS)
@given(data=st.data(), dtype=dtypes(), batch_size=st.integers(1, 6), dim=st.integers(1, 5))
def flow_no_layers(student, data, dtype, batch_size, dim):
    x = data.draw(tensors((batch_size, dim), dtype, low=-5, high=5), label="x")
    r, got = log_prob_of(student, [], x, return_inputs=True)
    x64 = x.double()
    expected = torch.distributions.Normal(torch.zeros_like(x64), torch.ones_like(x64)).log_prob(x64).sum(-1)
    expect_close(got, expected.to(dtype), what=f"log p(x) with layers = [] (the standard normal; {FLOW_HANDOUT})")
    expect_unchanged(r, x)


@checks.add("flow_log_prob", "matches the Gaussian density of a chain of affine and linear layers, applied in order",
            points=3)
@given(flow=gaussian_flows())
def flow_gaussian(student, flow):
    """z = A x + c with z ~ N(0, I) means x ~ N(-A^{-1} c, (A^T A)^{-1}) (judge-side, float64)."""
    x = flow.x
    r, got = log_prob_of(student, flow.layers, x, return_inputs=True)
    expected = gaussian_of(flow.layers).log_prob(x.double())
    expect_close(got, expected.to(x.dtype), what=f"log p(x) for the flow {flow.kinds} (x ~ a known Gaussian; "
                                                 f"{FLOW_HANDOUT})",
                 atol=1e-3 if x.dtype == torch.float32 else None)
    expect_unchanged(r, x)


@checks.add("flow_log_prob", "differentiable: its gradients wrt x and every layer's parameters are those of the "
                             "known Gaussian density", points=2)
@given(flow=gaussian_flows())
def flow_gradients(student, flow):
    """Expected gradients: autograd, here in the judge, of the Gaussian log density
    (torch.distributions.MultivariateNormal) as a function of x and of the layers' parameters."""
    layers, x = flow.layers, flow.x
    r, _ = log_prob_of(student, layers, x, wrt=(x, *layers))
    leaves = [{k: v.detach().double().requires_grad_(True) for k, v in layer.weights.items()} for layer in layers]
    x64 = x.detach().double().requires_grad_(True)
    total = gaussian_of(layers, leaves).log_prob(x64).sum()
    expected = torch.autograd.grad(total, [x64, *(w for ws in leaves for w in ws.values())])
    tol = dict(atol=1e-3 * (1 + float(x.abs().max()))) if x.dtype == torch.float32 else {}
    grad = r.grad(x)
    differentiable = "handout: \"keep everything differentiable\""
    expect(grad is not None, f"no gradient reached x: keep log p(x) inside the autograd graph ({differentiable})")
    expect_close(grad, expected[0].to(x.dtype), what="d sum log p(x) / dx (the score of the known Gaussian)", **tol)
    flat = iter(expected[1:])
    for i, (layer, ws) in enumerate(zip(layers, leaves)):
        grads = r.grad(layer) or {}
        for k in ws:
            g = grads.get(k)
            expect(g is not None, f"no gradient reached parameter {k} of layer {i} ({layer.name}): use each "
                                  f"layer's output and log_det without detaching them ({differentiable})")
            expect_close(g, next(flat).to(x.dtype), what=f"d sum log p(x) / d {k} of layer {i} ({layer.name})",
                         **tol)


# Nonlinear flows whose density is not Gaussian: tanh layers between affine/linear ones.
ROT = torch.tensor([[math.cos(0.6), -math.sin(0.6)], [math.sin(0.6), math.cos(0.6)]], dtype=F64)
FLOW_1D = [
    affine_layer(torch.tensor([0.5], dtype=F64), torch.tensor([0.4], dtype=F64)),
    tanh_layer(torch.tensor([1.5], dtype=F64)),
    linear_layer(torch.tensor([[0.8]], dtype=F64), torch.tensor([-0.3], dtype=F64)),
    tanh_layer(torch.tensor([-0.6], dtype=F64)),
]
FLOW_2D = [
    linear_layer(ROT * torch.tensor([1.3, 0.7], dtype=F64), torch.tensor([0.2, -0.4], dtype=F64)),
    tanh_layer(torch.tensor([1.2, -0.5], dtype=F64)),
    affine_layer(torch.tensor([0.3, -0.2], dtype=F64), torch.tensor([0.3, -0.2], dtype=F64)),
    tanh_layer(torch.tensor([0.8, 0.5], dtype=F64)),
]
INTEGRAL_TOL = 2e-3  # the reference's quadrature error is below 1e-6 on both grids


@checks.add("flow_log_prob", "exp(log p(x)) integrates to 1 over a 1-D and a 2-D grid (nonlinear layers)", points=2,
            requires=FLOW_PINS)
def flow_integrates_to_one(student):
    """Trapezoid rule on [-15, 15] (6001 points) and [-10, 10]^2 (401^2 points) of exp(log p)
    returned by the worker; the flows put all but < 1e-8 of their mass inside the grids."""
    grid = torch.linspace(-15, 15, 6001, dtype=F64)
    _, lp = log_prob_of(student, FLOW_1D, grid[:, None])
    total = float((trapezoid_weights(grid) * lp.exp()).sum())
    expect(abs(total - 1) < INTEGRAL_TOL,
           f"1-D flow (affine -> tanh -> linear -> tanh): the integral of exp(log p(x)) is {total:.5f}, expected 1 "
           f"(a density; {FLOW_HANDOUT})")
    axis = torch.linspace(-10, 10, 401, dtype=F64)
    xx, yy = torch.meshgrid(axis, axis, indexing="ij")
    _, lp = log_prob_of(student, FLOW_2D, torch.stack([xx.flatten(), yy.flatten()], -1))
    w = trapezoid_weights(axis)
    total = float(((w[:, None] * w[None, :]).flatten() * lp.exp()).sum())
    expect(abs(total - 1) < INTEGRAL_TOL,
           f"2-D flow (linear -> tanh -> affine -> tanh): the integral of exp(log p(x)) is {total:.5f}, expected 1 "
           f"(a density; {FLOW_HANDOUT})")
