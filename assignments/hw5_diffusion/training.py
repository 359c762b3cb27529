"""The hw5 training check's pieces: toy data, the judge-owned optimisation loop, and the sample score.

Hidden-only (imports the reference sampler); checks_public.py never imports this file.
The loop takes ``loss_and_grads(weights, x0, t, noise) -> (loss, {name: grad})`` so the
same code runs against a student's worker and, for calibration, in-process.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from grader.worker.fixtures.diffusion import MLPEps
from reference import diffusion as ref

F64 = torch.float64
T_STEPS = 50
HIDDEN = [64, 64]
SPEC = {"x_dim": 2, "hidden": HIDDEN, "n_steps": T_STEPS, "n_freq": 4, "activation": "relu"}
TRAIN_STEPS = 800
BATCH = 512
LR = 5e-3
N_EVAL = 2000


def toy_data(n: int, generator: torch.Generator) -> torch.Tensor:
    """A mixture of 6 Gaussians (std 0.15) on a ring of radius 1.5, float64 [n, 2]."""
    k = torch.randint(0, 6, (n,), generator=generator)
    angle = 2 * math.pi * k.double() / 6
    centres = 1.5 * torch.stack([angle.cos(), angle.sin()], dim=-1)
    return centres + 0.15 * torch.randn(n, 2, generator=generator, dtype=F64)


def schedule() -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        old = torch.get_default_dtype()
        torch.set_default_dtype(F64)
        try:
            betas = ref.cosine_beta_schedule(T_STEPS)
        finally:
            torch.set_default_dtype(old)
    return betas, torch.cumprod(1 - betas, 0)


def initial_model(seed: int = 0) -> MLPEps:
    torch.manual_seed(seed)
    return MLPEps(2, HIDDEN, T_STEPS, SPEC["n_freq"], SPEC["activation"]).double()


def train(loss_and_grads: Callable, steps: int = TRAIN_STEPS, seed: int = 0) -> MLPEps:
    """Adam on the judge's MLP; the loss and its gradients come from ``loss_and_grads``."""
    model = initial_model(seed)
    params = dict(model.named_parameters())
    optimiser = torch.optim.Adam(params.values(), lr=LR)
    decay = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda i: 1 - i / max(steps, 1))
    gen = torch.Generator().manual_seed(1 + seed)
    _, alpha_bars = schedule()
    for step in range(steps):
        x0 = toy_data(BATCH, gen)
        t = torch.randint(0, T_STEPS, (BATCH,), generator=gen)
        noise = torch.randn(BATCH, 2, generator=gen, dtype=F64)
        _, grads = loss_and_grads({k: v.detach().clone() for k, v in params.items()}, x0, t, noise, alpha_bars, step)
        optimiser.zero_grad()
        for name, p in params.items():
            p.grad = grads[name].to(p.dtype)
        optimiser.step()
        decay.step()
    return model


def reference_loss_and_grads(weights, x0, t, noise, alpha_bars, step):
    model = MLPEps(2, HIDDEN, T_STEPS, SPEC["n_freq"], SPEC["activation"]).double()
    model.load_state_dict(weights)
    loss = ref.noise_prediction_loss(model, x0, t, noise, alpha_bars)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return loss.detach(), dict(zip([n for n, _ in model.named_parameters()], grads))


@torch.no_grad()
def sample(model: MLPEps, n: int = N_EVAL) -> torch.Tensor:
    """The reference ancestral sampler, seeded."""
    betas, _ = schedule()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(n, 2, generator=gen, dtype=F64)
    for step in range(T_STEPS - 1, -1, -1):
        t = torch.full((n,), step, dtype=torch.int64)
        x = ref.p_sample_step(model, x, t, betas, torch.randn(n, 2, generator=gen, dtype=F64))
    return x


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidths=(0.1, 0.3, 1.0)) -> float:
    """Unbiased squared MMD with a sum of Gaussian kernels."""
    def k(a, b):
        d2 = torch.cdist(a, b) ** 2
        return sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)
    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
                 - 2 * kxy.mean())


def held_out() -> torch.Tensor:
    return toy_data(N_EVAL, torch.Generator().manual_seed(3))


def score(model: MLPEps) -> float:
    return mmd2(sample(model), held_out())
