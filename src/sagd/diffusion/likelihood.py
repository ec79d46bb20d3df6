"""Likelihood by the probability-flow ODE (docs/method.md §8).

``log p_0(x) = log p_1(x_1) + ∫_{t_0}^{1} div v(x_t, t) dt`` along the PF-ODE
``dx/dt = v = ½ β_t [(x - α_t D) / σ_t² - x]``, integrated from the data at ``t_0`` to ``t = 1``
with an adaptive Runge–Kutta solver; the prior is ``N(0, σ_1² Σ)``. With a band outside the
support the density is degenerate: everything is computed on the support (dimension
``cov.rank``), the unsupported part being a deterministic function of the data.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

from .process import VPProcess

EXACT_MAX_DIM = 256


def _denoise_and_residual_trace(denoiser: Callable, proc: VPProcess, x: torch.Tensor, t: torch.Tensor,
                                 a: float, v: torch.Tensor, exact: bool):
    """``D(x, t)`` and ``tr(P (I - α_t J_D) P)`` per sample, ``P`` the projection on the support.

    ``v`` ``(K, B, C, *spatial)``: with ``exact``, the basis vectors ``P e_j`` (``K = d``), and
    ``tr(P J) = Σ_j (Jᵀ P e_j)_j``; otherwise Hutchinson probes ``v = P z`` estimating
    ``vᵀ (I - α J_D) v`` with one probe for both terms: near ``t = 0``, where ``α J_D → I``,
    its variance vanishes with the residual.
    """
    b, shape, d = x.shape[0], x.shape[1:], math.prod(x.shape[1:])
    k = v.shape[0]
    with torch.enable_grad():
        xr = x.detach().unsqueeze(0).expand(k, *x.shape).reshape(k * b, *shape).requires_grad_(True)
        tr = t.repeat(k)
        out = proc.consistent(denoiser(xr, tr), xr, tr)
        (g,) = torch.autograd.grad((out * v.reshape(k * b, *shape)).sum(), xr)
    g, v = g.reshape(k, b, d), v.reshape(k, b, d)
    if exact:
        residual = proc.cov.rank - a * torch.diagonal(g, dim1=0, dim2=2).sum(-1)
    else:
        residual = (v * (v - a * g)).sum(-1).mean(0)
    return out.detach().reshape(k, b, *shape)[0], residual.detach()


def check_arguments(proc, x0: torch.Tensor, t0: float, probes: int) -> None:
    """What both likelihoods check: ``x0`` ``(B, *proc.shape)``, ``0 < t0 < 1``, ``probes >= 1``."""
    if tuple(x0.shape[1:]) != proc.shape:
        raise ValueError(f"x0 must have shape (B, *{proc.shape}), got {tuple(x0.shape)}")
    if not 0 < t0 < 1:
        raise ValueError(f"t0 must be in (0, 1), got {t0}")
    if int(probes) < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")


def integrate(rhs: Callable, x0: torch.Tensor, t0: float, rtol: float, atol: float):
    """Integrate ``rhs(t, [x, ∫div]) -> [dx/dt, div]`` (flat float64 arrays) from ``(x0, 0)`` at ``t0`` to ``t = 1``
    (RK45); returns ``x_1`` ``(B, C, *spatial)`` and the integrals ``(B,)``, float64."""
    b = x0.shape[0]
    state0 = np.concatenate([x0.detach().flatten().double().cpu().numpy(), np.zeros(b)])
    sol = solve_ivp(rhs, (t0, 1.0), state0, method="RK45", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"PF-ODE integration failed: {sol.message}")
    end = torch.from_numpy(sol.y[:, -1])
    return end[:-b].reshape(x0.shape), end[-b:]


@torch.no_grad()
def nll(
    denoiser: Callable,
    proc: VPProcess,
    x0: torch.Tensor,
    exact: bool | None = None,
    probes: int = 1,
    t0: float = 1e-5,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Negative log-likelihood in nats of the continuous density at ``x0`` ``(B, C, *spatial)``; shape ``(B,)``.

    Args:
        exact: exact divergence (``d`` backward passes per evaluation); default when ``d <= 256``.
        probes: Hutchinson probes otherwise (Rademacher, projected on the support, fixed per call).
        t0: start of the integration (the density at ``t0`` stands for the data density).
    """
    check_arguments(proc, x0, t0, probes)
    cov, shape, b = proc.cov, x0.shape, x0.shape[0]
    r = cov.rank
    if exact is None:
        exact = cov.dim <= EXACT_MAX_DIM
    if exact:  # the projected basis, built once for every evaluation of the drift
        eye = torch.eye(cov.dim, device=x0.device, dtype=x0.dtype).reshape(cov.dim, 1, *shape[1:])
        v = cov.project(eye).expand(cov.dim, *shape)
    else:
        z = torch.randint(0, 2, (int(probes), *shape), generator=generator, device=x0.device)
        v = cov.project(2 * z.to(x0.dtype) - 1)

    def rhs(t: float, state: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(state[: b * cov.dim]).to(x0).reshape(shape)
        tb = torch.full((b,), t, device=x0.device, dtype=x0.dtype)
        tt = torch.tensor(t, dtype=torch.float64)
        a, s2, beta = proc.alpha(tt).item(), proc.sigma(tt).item() ** 2, proc.beta(tt).item()
        d, residual = _denoise_and_residual_trace(denoiser, proc, x, tb, a, v, exact)
        dx = 0.5 * beta * ((x - a * d) / s2 - x)
        div = 0.5 * beta * (residual / s2 - r)
        return np.concatenate([dx.flatten().double().cpu().numpy(), div.double().cpu().numpy()])

    x1, integral = integrate(rhs, x0, t0, rtol, atol)
    s1 = proc.sigma(torch.tensor(1.0, dtype=torch.float64)).item()
    white = cov.inv_sqrt(x1)
    log_prior = -0.5 * (white.pow(2).flatten(1).sum(1) / s1**2 + r * math.log(2 * math.pi * s1**2) + cov.logdet())
    return -(log_prior + integral).to(x0.dtype)


def bits_per_dim(
    denoiser: Callable,
    proc: VPProcess,
    x0: torch.Tensor,
    dequantize: bool = True,
    generator: torch.Generator | None = None,
    **kwargs,
) -> torch.Tensor:
    """Bits per dimension of 8-bit data scaled to ``[-1, 1]`` (``x/127.5 - 1``), shape ``(B,)``.

    With ``dequantize`` uniform noise ``u/127.5``, ``u ~ U[0, 1)``, is added first (the usual
    variational dequantisation bound); the ``log 127.5`` per dimension converts the density to
    the 0–255 scale. Dimensions are those of the support. ``kwargs`` go to :func:`nll`.
    """
    if dequantize:
        x0 = x0 + torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype) / 127.5
    r = proc.cov.rank
    nats = nll(denoiser, proc, x0, generator=generator, **kwargs)
    return (nats + r * math.log(127.5)) / (r * math.log(2))
