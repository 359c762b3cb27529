"""hw3_flows public checks: properties that need no reference implementation.

Students run these with `dgm-grade check flows.py`. Expected values come from
definitions computed here in the judge: autograd Jacobians of networks built
from the student's masks, the student's own Jacobians (vector-Jacobian
products returned by the worker), Gaussian densities known in closed form,
and quadrature over 1-D and 2-D grids. The coupling layer is always the
student's class, built in the worker around a conditioner fixture.
"""
from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.checks import Checks
from grader.compare import describe, expect, expect_close, expect_tensor, expect_tuple, expect_unchanged
from grader.strategies import dtypes, tensors

from .models import (
    F64,
    LOG_2PI,
    affine_layer,
    conditioner,
    constant_conditioner,
    conv_dependence,
    coupling,
    coupling_definition,
    expected_dependence,
    gaussian_of,
    linear_layer,
    made_jacobian,
    mask_product,
    random_orthogonal,
    tanh_layer,
    trapezoid_weights,
)

checks = Checks()


def name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------------- made_masks


@st.composite
def made_configs(draw, *, max_d: int = 8, wide: bool = False, max_layers: int = 3):
    """(D, hidden_sizes, order argument (None, list or long tensor), order as a tensor).

    wide: every hidden layer has at least D - 1 units (full connectivity is then required).
    """
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(0, max_layers))
    low = max(d - 1, 1) if wide else 1
    hidden = draw(st.lists(st.integers(low, low + (6 if wide else 11)), min_size=n, max_size=n))
    perm = draw(st.permutations(list(range(d))))
    kind = draw(st.sampled_from(["default", "list", "tensor"]))
    order_arg = None if kind == "default" else list(perm) if kind == "list" else torch.tensor(perm)
    order = torch.arange(d) if kind == "default" else torch.tensor(perm)
    return d, hidden, order_arg, order


def expect_masks(value, d: int, hidden: list[int]) -> list[torch.Tensor]:
    """A list of len(hidden) + 1 float 0/1 masks shaped like the nn.Linear weights; returned in float64."""
    what = f"made_masks({d}, {hidden}, ...)"
    expect(isinstance(value, (list, tuple)),
           f"{what}: got a {describe(value)}, expected a list of {len(hidden) + 1} masks")
    expect(len(value) == len(hidden) + 1,
           f"{what}: got {len(value)} masks, expected {len(hidden) + 1} "
           "(one per linear layer, the output layer included)")
    sizes = [d, *hidden, d]
    masks = []
    for layer, (m, n_in, n_out) in enumerate(zip(value, sizes[:-1], sizes[1:])):
        what_m = f"mask {layer} (of nn.Linear({n_in}, {n_out}), whose weight is [{n_out}, {n_in}])"
        m = expect_tensor(m, shape=(n_out, n_in), what=what_m)
        expect(m.is_floating_point(), f"{what_m}: got dtype {name(m.dtype)}, expected a float tensor of 0s and 1s")
        expect(bool(((m == 0) | (m == 1)).all()),
               f"{what_m}: entries must be 0 or 1; got values {m.unique().tolist()[:6]}")
        masks.append(m.double())
    return masks


@checks.add("made_masks", "one float 0/1 mask per linear layer, shaped like nn.Linear.weight [out, in]")
@given(config=made_configs())
def made_shapes(student, config):
    d, hidden, order_arg, _ = config
    expect_masks(student.made_masks(d, hidden, order_arg), d, hidden)


@checks.add("made_masks", "the masked network is autoregressive: d out_i / d in_j = 0 unless order[j] < order[i]",
            points=3)
@given(config=made_configs(), seed=st.integers(0, 2**16))
def made_autoregressive(student, config, seed):
    """A tanh MLP with random weights, each layer's weight multiplied by the student's mask;
    its Jacobian (autograd, here in the judge) must vanish wherever order[j] >= order[i]."""
    d, hidden, order_arg, order = config
    masks = expect_masks(student.made_masks(d, hidden, order_arg), d, hidden)
    gen = torch.Generator().manual_seed(seed)
    jac = made_jacobian(masks, torch.randn(d, generator=gen, dtype=F64), gen)
    forbidden = order[None, :] >= order[:, None]  # [i, j]
    bad = (jac != 0) & forbidden
    if bool(bad.any()):
        i, j = (int(v) for v in bad.nonzero()[0])
        expect(False, f"output {i} (order {int(order[i])}) depends on input {j} (order {int(order[j])}) through the "
                      f"masked network, but may only see inputs of smaller order; mask product (paths from input j "
                      f"to output i):\n{mask_product(masks).long()}\norder = {order.tolist()}")


@checks.add("made_masks", "every allowed input reaches its output when every hidden layer has >= in_features - 1 units",
            points=2)
@given(config=made_configs(wide=True))
def made_connected(student, config):
    """Judged on the 0/1 mask products (number of paths from input j to output i), not on a
    network's Jacobian: a dead unit can cut a path in a correct network."""
    d, hidden, order_arg, order = config
    masks = expect_masks(student.made_masks(d, hidden, order_arg), d, hidden)
    paths = mask_product(masks)
    allowed = order[None, :] < order[:, None]
    missing = allowed & (paths == 0)
    if bool(missing.any()):
        i, j = (int(v) for v in missing.nonzero()[0])
        expect(False, f"with hidden_sizes={hidden} (all >= in_features - 1 = {d - 1}), output {i} (order "
                      f"{int(order[i])}) has no path from input {j} (order {int(order[j])}); give the hidden units "
                      f"every degree 0 .. in_features - 2. Paths per (output, input):\n{paths.long()}\n"
                      f"order = {order.tolist()}")


@checks.add("made_masks", "with no hidden layers: a single [D, D] mask with entry [i, j] = 1 iff order[j] < order[i]")
@given(config=made_configs(max_layers=0))
def made_no_hidden(student, config):
    d, _, order_arg, order = config
    (mask,) = expect_masks(student.made_masks(d, [], order_arg), d, [])
    expected = (order[None, :] < order[:, None]).double()
    expect_close(mask, expected, what=f"made_masks({d}, [], order={order.tolist()})[0]")


@checks.add("made_masks", "deterministic, in torch's default dtype, and leaves order unchanged")
@given(config=made_configs(), dtype=dtypes())
def made_deterministic(student, config, dtype):
    d, hidden, _, order = config
    first = student.call("made_masks", d, hidden, order, default_dtype=dtype, return_inputs=True)
    again = student.call("made_masks", d, hidden, order, default_dtype=dtype, seed_offset=1)
    expect_unchanged(first, order)
    n = len(hidden) + 1
    for layer, (m, m2) in enumerate(zip(expect_tuple(first.value, n), expect_tuple(again.value, n))):
        m = expect_tensor(m, what=f"mask {layer}")
        expect(m.dtype == dtype, f"mask {layer}: got dtype {name(m.dtype)} with torch's default dtype set to "
                                 f"{name(dtype)}; create masks in the default dtype (no hard-coded float32)")
        expect(isinstance(m2, torch.Tensor) and torch.equal(m, m2),
               f"mask {layer} changed between two calls with the same arguments: hidden degrees must be "
               "deterministic (e.g. k mod (in_features - 1)), not drawn at random")


# ---------------------------------------------------------------------- pixelcnn_mask


@st.composite
def conv_configs(draw):
    return (draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.sampled_from([1, 3, 5, 7])),
            draw(st.sampled_from(["A", "B"])))


def expect_conv_mask(value, out_ch: int, in_ch: int, k: int, kind: str) -> torch.Tensor:
    what = f"pixelcnn_mask({out_ch}, {in_ch}, {k}, {kind!r})"
    m = expect_tensor(value, shape=(out_ch, in_ch, k, k), what=what)
    expect(m.is_floating_point(), f"{what}: got dtype {name(m.dtype)}, expected a float tensor of 0s and 1s")
    expect(bool(((m == 0) | (m == 1)).all()), f"{what}: entries must be 0 or 1; got values {m.unique().tolist()[:6]}")
    return m


@checks.add("pixelcnn_mask", "[out, in, k, k] float 0/1, the same spatial mask for every channel pair")
@given(config=conv_configs())
def pixel_shape(student, config):
    m = expect_conv_mask(student.pixelcnn_mask(*config), *config)
    expect(bool((m == m[:1, :1]).all()),
           f"pixelcnn_mask{config}: every (output, input) channel pair must use the same spatial mask "
           "(no channel grouping)")


def _offset(index: list[int], size: int) -> str:
    """'(dr, dc)' of an input pixel relative to the centre output pixel."""
    return f"(row {index[-2] - size // 2:+d}, column {index[-1] - size // 2:+d})"


@checks.add("pixelcnn_mask", "a masked conv2d is causal: no output pixel sees itself ('A') or any later pixel",
            points=2)
@given(config=conv_configs(), seed=st.integers(0, 2**16))
def pixel_causal(student, config, seed):
    """conv2d with random positive weights times the mask, here in the judge; autograd gives the
    input pixels the centre output pixel depends on."""
    out_ch, in_ch, k, kind = config
    mask = expect_conv_mask(student.pixelcnn_mask(*config), *config)
    seen = conv_dependence(mask, torch.Generator().manual_seed(seed))
    allowed = expected_dependence(out_ch, in_ch, k, kind)
    bad = seen & ~allowed
    if bool(bad.any()):
        idx = bad.nonzero()[0].tolist()
        centre = (2 * k + 1) // 2
        what = "itself" if idx[-2] == idx[-1] == centre else f"the pixel at {_offset(idx, 2 * k + 1)}"
        expect(False, f"with mask type {kind!r} and kernel {k}, output channel {idx[0]} at a pixel depends on "
                      f"{what} of input channel {idx[1]}; type 'A' must hide the centre and both types must hide "
                      f"every later pixel (right of the centre in its row, and all rows below)")


@checks.add("pixelcnn_mask", "a masked conv2d sees every earlier pixel of its window (and the centre for 'B')",
            points=2)
@given(config=conv_configs(), seed=st.integers(0, 2**16))
def pixel_complete(student, config, seed):
    out_ch, in_ch, k, kind = config
    mask = expect_conv_mask(student.pixelcnn_mask(*config), *config)
    seen = conv_dependence(mask, torch.Generator().manual_seed(seed))
    missing = expected_dependence(out_ch, in_ch, k, kind) & ~seen
    if bool(missing.any()):
        idx = missing.nonzero()[0].tolist()
        expect(False, f"with mask type {kind!r} and kernel {k}, output channel {idx[0]} does not see the pixel at "
                      f"{_offset(idx, 2 * k + 1)} of input channel {idx[1]}: every pixel above the centre row and "
                      f"left of the centre in its row must stay visible" + (", and the centre for type 'B'"
                                                                            if kind == "B" else ""))


@checks.add("pixelcnn_mask", "in torch's default dtype (float32 and float64)")
@given(config=conv_configs(), dtype=dtypes())
def pixel_dtype(student, config, dtype):
    m = expect_tensor(student.call("pixelcnn_mask", *config, default_dtype=dtype).value,
                      shape=(config[0], config[1], config[2], config[2]), what=f"pixelcnn_mask{config}")
    expect(m.dtype == dtype, f"got dtype {name(m.dtype)} with torch's default dtype set to {name(dtype)}; "
                             "create the mask in the default dtype")


# ---------------------------------------------------------------------- AffineCoupling


@st.composite
def coupling_cases(draw, dtype=dtypes(), *, mixed: bool = True, max_d: int = 6, max_b: int = 5):
    """(mask, conditioner Fixture, x). mixed: the mask has both 0s and 1s (so D >= 2)."""
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
    net, _ = conditioner(d, hidden, dtype, torch.Generator().manual_seed(draw(st.integers(0, 2**16))), scale)
    x = draw(tensors((draw(st.integers(1, max_b)), d), dtype, low=-3, high=3))
    return mask, net, x


def forward(student, mask, net, x, **kwargs):
    """The student's AffineCoupling(mask, net).forward(x): (CallResult, y, log_det), checked for shape and dtype."""
    r = student.call("AffineCoupling.forward", coupling(mask, net), x, **kwargs)
    y, log_det = expect_tuple(r.value, 2, what="forward(x), expected (y, log_det)")
    y = expect_tensor(y, shape=x.shape, dtype=x.dtype, what="y = forward(x)[0]")
    log_det = expect_tensor(log_det, shape=x.shape[:1], dtype=x.dtype, what="log_det = forward(x)[1] (one per example)")
    return r, y, log_det


def inverse(student, mask, net, y):
    r = student.call("AffineCoupling.inverse", coupling(mask, net), y)
    return expect_tensor(r.value, shape=y.shape, dtype=y.dtype, what="inverse(y)")


def slack(dtype: torch.dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 1e-10


@checks.add("AffineCoupling", "forward returns (y [B, D], log_det [B]) in the input dtype and leaves inputs unchanged")
@given(case=coupling_cases(mixed=False))
def coupling_shapes(student, case):
    mask, net, x = case
    r, _, _ = forward(student, mask, net, x, return_inputs=True)
    expect_unchanged(r, mask, x)


@checks.add("AffineCoupling", "forward leaves the masked entries (mask == 1) unchanged")
@given(case=coupling_cases(mixed=False))
def coupling_masked_identity(student, case):
    mask, net, x = case
    _, y, _ = forward(student, mask, net, x)
    keep = mask.bool()
    expect_close(y[:, keep], x[:, keep], what=f"y[:, mask == 1] (mask = {mask.tolist()})")


@checks.add("AffineCoupling", "inverse(forward(x)) = x and forward(inverse(y)) = y", points=2)
@given(case=coupling_cases())
def coupling_inverse(student, case):
    mask, net, x = case
    _, y, _ = forward(student, mask, net, x)
    tol = dict(atol=slack(x.dtype) * 10) if x.dtype == torch.float32 else {}
    expect_close(inverse(student, mask, net, y), x, what=f"inverse(forward(x)) (mask = {mask.tolist()})", **tol)
    u = inverse(student, mask, net, x)
    _, back, _ = forward(student, mask, net, u)
    expect_close(back, x, what=f"forward(inverse(y))[0] (mask = {mask.tolist()})", **tol)


def coupling_jacobians(student, mask, net, x) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example Jacobians dy/dx [B, D, D] of the student's forward, and log_det [B], in one call.

    Each example is repeated D times and copy i gets the cotangent e_i, so the
    gradient with respect to copy i is row i of that example's Jacobian.
    """
    b, d = x.shape
    rep = x.repeat_interleave(d, 0)
    cot = torch.eye(d, dtype=x.dtype).repeat(b, 1)
    r, _, log_det = forward(student, mask, net, rep, wrt=(rep,), output=(0,), cotangent=cot)
    grad = r.grad(rep)
    expect(grad is not None, "y = forward(x)[0] does not depend on x through autograd (no gradient reached x)")
    return grad.reshape(b, d, d), log_det[::d]


@checks.add("AffineCoupling", "log_det equals log|det dy/dx| of the autograd Jacobian", points=3)
@given(case=coupling_cases())
def coupling_log_det(student, case):
    mask, net, x = case
    jac, log_det = coupling_jacobians(student, mask, net, x)
    expected = torch.linalg.slogdet(jac.double())[1]
    expect_close(log_det, expected.to(x.dtype), what=f"log_det vs log|det J| (mask = {mask.tolist()})",
                 atol=slack(x.dtype) * x.shape[1])


@checks.add("AffineCoupling", "Jacobian: transformed entries depend on the other transformed entries not at all, "
                              "on themselves with slope exp(tanh(s)) in [1/e, e]", points=2)
@given(case=coupling_cases())
def coupling_jacobian_structure(student, case):
    mask, net, x = case
    jac, _ = coupling_jacobians(student, mask, net, x)
    free = ~mask.bool()
    block = jac[:, free][:, :, free].double()
    diag = torch.diagonal(block, dim1=-2, dim2=-1)
    off = block - torch.diag_embed(diag)
    expect(bool((off.abs() <= slack(x.dtype)).all()),
           f"d y_i / d x_j is {off.abs().max().item():.3g} for two different transformed entries i, j (mask == 0): "
           f"s and t must be computed from net(x * mask), which sees only the masked entries (mask = {mask.tolist()})")
    low, high = math.exp(-1) * (1 - 1e-5), math.exp(1) * (1 + 1e-5)
    expect(bool(((diag >= low) & (diag <= high)).all()),
           f"d y_i / d x_i of a transformed entry must be exp(tanh(s_i)), in [1/e, e]; got values in "
           f"[{diag.min().item():.4g}, {diag.max().item():.4g}] (is s passed through tanh? is it x * exp(s)?)")


def inverse_jacobians(student, mask, net, y) -> torch.Tensor:
    """Per-example Jacobians d inverse(y) / dy [B, D, D], one call (as coupling_jacobians)."""
    b, d = y.shape
    rep = y.repeat_interleave(d, 0)
    cot = torch.eye(d, dtype=y.dtype).repeat(b, 1)
    r = student.call("AffineCoupling.inverse", coupling(mask, net), rep, wrt=(rep,), cotangent=cot)
    expect_tensor(r.value, shape=rep.shape, dtype=y.dtype, what="inverse(y)")
    grad = r.grad(rep)
    expect(grad is not None, "inverse(y) does not depend on y through autograd (no gradient reached y)")
    return grad.reshape(b, d, d)


@checks.add("AffineCoupling", "inverse is differentiable: its Jacobian is the inverse of forward's")
@given(case=coupling_cases())
def coupling_inverse_jacobian(student, case):
    mask, net, x = case
    _, y, _ = forward(student, mask, net, x)
    jac_f, _ = coupling_jacobians(student, mask, net, x)
    jac_inv = inverse_jacobians(student, mask, net, y)
    eye = torch.eye(x.shape[1], dtype=F64).expand_as(jac_f)
    scale = float(jac_inv.abs().max() * jac_f.abs().max()) * x.shape[1]  # rounding grows with the entries
    expect_close(jac_inv.double() @ jac_f.double(), eye, what="J_inverse(y) @ J_forward(x) (should be the identity)",
                 atol=(1e-6 if x.dtype == torch.float32 else 1e-13) * scale + slack(x.dtype))


@checks.add("AffineCoupling", "with a constant conditioner net(.) = [s0, t0]: y = x exp(tanh(s0)) + t0 on "
                              "transformed entries, log_det = sum tanh(s0)", points=2)
@given(data=st.data(), case=coupling_cases(mixed=False))
def coupling_constant_net(student, data, case):
    mask, _, x = case
    d = x.shape[1]
    s0 = data.draw(tensors((d,), x.dtype, low=-4, high=4), label="s0")
    t0 = data.draw(tensors((d,), x.dtype, low=-4, high=4), label="t0")
    _, y, log_det = forward(student, mask, constant_conditioner(s0, t0), x)
    s, t, m = torch.tanh(s0.double()), t0.double(), mask.double()
    expected_y = m * x.double() + (1 - m) * (x.double() * torch.exp(s) + t)
    expected_ld = ((1 - m) * s).sum().expand(x.shape[0])
    hint = "(the first half of net's output is s, the second t)"
    expect_close(y, expected_y.to(x.dtype),
                 what=f"y with s0 = {s0.tolist()}, t0 = {t0.tolist()}, mask = {mask.tolist()} {hint}")
    expect_close(log_det, expected_ld.to(x.dtype), what=f"log_det with s0 = {s0.tolist()}, mask = {mask.tolist()}",
                 atol=slack(x.dtype) * d)


@checks.add("AffineCoupling", "gradients reach the conditioner's parameters through y and log_det")
@given(data=st.data(), case=coupling_cases(dtype=st.just(F64)))
def coupling_parameter_gradients(student, data, case):
    """The gradients of <cot, y> and <cot, log_det> wrt every parameter of the conditioner equal
    those of the handout's definition, differentiated here (they can be 0 where tanh saturates)."""
    mask, net, x = case
    module, *outputs = coupling_definition(mask, net, x)
    names, params = zip(*module.named_parameters())
    for index, what in ((0, "y"), (1, "log_det")):
        cot = data.draw(tensors(x.shape if index == 0 else x.shape[:1], F64, low=-2, high=2))
        r, _, _ = forward(student, mask, net, x, wrt=(net,), output=(index,), cotangent=cot)
        grads = r.grad(net) or {}
        missing = [k for k in net.weights if grads.get(k) is None]
        expect(not missing, f"no gradient reached the conditioner's parameters {missing} from {what}: use the net "
                            "you were given, inside the autograd graph (no .detach(), no torch.no_grad())")
        expected = torch.autograd.grad(outputs[index], params, cot, allow_unused=True, retain_graph=True)
        for pname, value in zip(names, expected):
            value = torch.zeros_like(grads[pname]) if value is None else value
            expect_close(grads[pname], value, what=f"d <cot, {what}> / d net.{pname} (mask = {mask.tolist()})",
                         atol=slack(F64) * (1 + float(value.abs().max())))


# ---------------------------------------------------------------------- flow_log_prob


@st.composite
def gaussian_flows(draw, dtype=dtypes(), *, max_d: int = 4, max_layers: int = 4, max_b: int = 6):
    """(layers, x): a chain of affine and linear fixture layers (a Gaussian flow) and data x [B, D]."""
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
    return layers, x


def log_prob_of(student, layers, x, **kwargs):
    r = student.call("flow_log_prob", layers, x, **kwargs)
    return r, expect_tensor(r.value, shape=x.shape[:1], dtype=x.dtype,
                            what="flow_log_prob(layers, x) (one per example)")


@checks.add("flow_log_prob", "with no layers: the N(0, I) log density, [B] in the input dtype, inputs unchanged")
@given(data=st.data(), dtype=dtypes(), b=st.integers(1, 6), d=st.integers(1, 5))
def flow_no_layers(student, data, dtype, b, d):
    x = data.draw(tensors((b, d), dtype, low=-5, high=5))
    r, got = log_prob_of(student, [], x, return_inputs=True)
    expected = -0.5 * (x.double() ** 2 + LOG_2PI).sum(-1)
    expect_close(got, expected.to(dtype), what="log p(x) with no layers (standard normal)")
    expect_unchanged(r, x)


@checks.add("flow_log_prob", "matches the Gaussian density of a chain of affine and linear layers, applied in order",
            points=3)
@given(flow=gaussian_flows())
def flow_gaussian(student, flow):
    """z = A x + c with z ~ N(0, I) means x ~ N(-A^{-1} c, (A^T A)^{-1}) (judge-side, float64)."""
    layers, x = flow
    _, got = log_prob_of(student, layers, x)
    expected = gaussian_of(layers).log_prob(x.double())
    kinds = " -> ".join(layer.name for layer in layers)
    expect_close(got, expected.to(x.dtype), what=f"log p(x) for the flow {kinds} (x ~ a known Gaussian)",
                 atol=1e-3 if x.dtype == torch.float32 else None)


@checks.add("flow_log_prob", "differentiable: its gradients wrt x and every layer's parameters are those of the "
                             "known Gaussian density", points=2)
@given(flow=gaussian_flows())
def flow_gradients(student, flow):
    """Expected gradients: autograd, here in the judge, of the Gaussian log density
    (torch.distributions.MultivariateNormal) as a function of x and of the layers' parameters."""
    layers, x = flow
    r, _ = log_prob_of(student, layers, x, wrt=(x, *layers))
    leaves = [{k: v.detach().double().requires_grad_(True) for k, v in layer.weights.items()} for layer in layers]
    x64 = x.detach().double().requires_grad_(True)
    total = gaussian_of(layers, leaves).log_prob(x64).sum()
    expected = torch.autograd.grad(total, [x64, *(w for ws in leaves for w in ws.values())])
    tol = dict(atol=1e-3 * (1 + float(x.abs().max()))) if x.dtype == torch.float32 else {}
    grad = r.grad(x)
    expect(grad is not None, "no gradient reached x: keep log p(x) inside the autograd graph")
    expect_close(grad, expected[0].to(x.dtype), what="d sum log p(x) / dx (the score of the known Gaussian)", **tol)
    flat = iter(expected[1:])
    for i, (layer, ws) in enumerate(zip(layers, leaves)):
        grads = r.grad(layer) or {}
        for k in ws:
            g = grads.get(k)
            expect(g is not None, f"no gradient reached parameter {k} of layer {i} ({layer.name}): use each "
                                  "layer's output and log_det without detaching them")
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


@checks.add("flow_log_prob", "exp(log p(x)) integrates to 1 over a 1-D and a 2-D grid (nonlinear layers)", points=2)
def flow_integrates_to_one(student):
    """Trapezoid rule on [-15, 15] (6001 points) and [-10, 10]^2 (401^2 points) of exp(log p)
    returned by the worker; the flows put all but < 1e-8 of their mass inside the grids."""
    grid = torch.linspace(-15, 15, 6001, dtype=F64)
    _, lp = log_prob_of(student, FLOW_1D, grid[:, None])
    total = float((trapezoid_weights(grid) * lp.exp()).sum())
    expect(abs(total - 1) < INTEGRAL_TOL,
           f"1-D flow (affine -> tanh -> linear -> tanh): the integral of exp(log p(x)) is {total:.5f}, expected 1 "
           "(log p = log N(z; 0, I) + the sum of every layer's log_det)")
    axis = torch.linspace(-10, 10, 401, dtype=F64)
    xx, yy = torch.meshgrid(axis, axis, indexing="ij")
    _, lp = log_prob_of(student, FLOW_2D, torch.stack([xx.flatten(), yy.flatten()], -1))
    w = trapezoid_weights(axis)
    total = float(((w[:, None] * w[None, :]).flatten() * lp.exp()).sum())
    expect(abs(total - 1) < INTEGRAL_TOL,
           f"2-D flow (linear -> tanh -> affine -> tanh): the integral of exp(log p(x)) is {total:.5f}, expected 1")
