"""Likelihood by the probability-flow ODE of a frequency-diagonal process (docs/method.md §8, §11).

Per frequency the SDE is ``dx̂ = f x̂ dt + g dŵ`` (``FrequencyProcess.drift``) and the PF-ODE
``dx̂/dt = f x̂ + ½ g² (x̂ - a D̂) / s²``, i.e. ``v(x) = Fᴴ diag(f + ½g²/s²) F x - M D(x)`` with
``M = Fᴴ diag(½ g² a / s²) F``; its divergence is ``Σ_k (f + ½ g²/s²) - tr(M J_D)``.
``log p_{t_0}(x) = log π(x_1) + ∫_{t_0}^{1} div v dt`` with ``π`` the process's prior; for inverse heat
``p_{t_0}`` is the law of the still blurred, noised ``x_{t_0}``, not of the data.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..spectral import fourier
from .frequency import FrequencyProcess
from .likelihood import EXACT_MAX_DIM, check_arguments, integrate


def _denoise_and_trace(denoiser: Callable, x: torch.Tensor, t: torch.Tensor, u: torch.Tensor, z: torch.Tensor | None):
    """``D(x, t)`` and ``tr(M J_D)`` per sample: ``u = M e_j`` (``z`` None: exact) or ``u = M z`` for probes ``z``;
    ``u`` ``(K, B, C, *spatial)``."""
    k, b, shape = u.shape[0], x.shape[0], x.shape[1:]
    with torch.enable_grad():
        xr = x.detach().unsqueeze(0).expand(k, *x.shape).reshape(k * b, *shape).requires_grad_(True)
        out = denoiser(xr, t.repeat(k))
        (g,) = torch.autograd.grad((out * u.reshape(k * b, *shape)).sum(), xr)
    g = g.reshape(k, b, -1)
    trace = torch.diagonal(g, dim1=0, dim2=2).sum(-1) if z is None else (z.reshape(k, b, -1) * g).sum(-1).mean(0)
    return out.detach().reshape(k, b, *shape)[0], trace.detach()


@torch.no_grad()
def nll(denoiser: Callable, proc: FrequencyProcess, x0: torch.Tensor, exact: bool | None = None, probes: int = 1,
        t0: float = 1e-5, rtol: float = 1e-5, atol: float = 1e-5,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """``-log p_{t0}(x0)`` in nats for ``x0`` ``(B, C, *spatial)``; shape ``(B,)``. Arguments as ``diffusion.nll``;
    needs full support and a prior of positive power (``proc.prior()``)."""
    if not isinstance(proc, FrequencyProcess):
        raise ValueError(f"proc must be a FrequencyProcess, got {type(proc).__name__}")
    check_arguments(proc, x0, t0, probes)
    mean, power = proc.prior()
    if not proc.full_support or not (power > 0).all():
        raise ValueError("nll of a FrequencyProcess needs s_t(k) > 0 and a prior of positive power at every frequency")
    shape, b, d = x0.shape, x0.shape[0], math.prod(proc.shape)
    exact = d <= EXACT_MAX_DIM if exact is None else exact
    if exact:
        basis = torch.eye(d, device=x0.device, dtype=x0.dtype).reshape(d, 1, *shape[1:])
        z = None
    else:
        z = (2 * torch.randint(0, 2, (int(probes), *shape), generator=generator, device=x0.device) - 1).to(x0.dtype)

    def rhs(t: float, state: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(state[: b * d]).to(x0).reshape(shape)
        a, s = proc.coefficients(torch.tensor(t, dtype=torch.float64))
        f, g2 = proc.drift(t)
        linear, m = f + 0.5 * g2 / s**2, 0.5 * g2 * a / s**2
        u = proc.multiply(basis, m).expand(d, *shape) if exact else proc.multiply(z, m)
        den, trace = _denoise_and_trace(denoiser, x, torch.full((b,), t, device=x0.device, dtype=x0.dtype), u, z)
        dx = proc.multiply(x, linear) - proc.multiply(den, m)
        div = linear.sum().item() - trace
        return np.concatenate([dx.flatten().double().cpu().numpy(), div.double().cpu().numpy()])

    x1, integral = integrate(rhs, x0, t0, rtol, atol)
    resid = fourier.rfft(x1 - mean, proc.ndim)
    weight = torch.ones_like(fourier.half(power))  # each half-grid bin stands for itself and its mirror image
    n = proc.shape[-1]
    weight[..., 1: (n + 1) // 2] = 2
    quad = (weight * resid.abs() ** 2 / fourier.half(power)).flatten(1).sum(1)
    log_prior = -0.5 * (quad + d * math.log(2 * math.pi) + torch.log(power).sum())
    return -(log_prior + integral).to(x0.dtype)
