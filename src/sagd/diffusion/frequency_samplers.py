"""DDIM and DPM-Solver++ for the frequency-diagonal process, exact per frequency (docs/method.md §11).

Along the probability-flow ODE each frequency ``k`` of ``x_t = Fᴴ (a_t ⊙ F x_0 + s_t ⊙ F ε)`` obeys the
isotropic equation in its own log-SNR ``λ_t(k) = log(a_t(k) / s_t(k))``:
``x̂_s = (s_s/s_t) x̂_t + a_s ∫_{λ_t}^{λ_s} e^{λ - λ_s} D̂(λ) dλ`` (per ``k``, ``D̂ = F D``). The linear part is
integrated exactly, frequency by frequency, and ``D`` is the polynomial in ``λ(k)`` through the last
denoised values: DDIM is order 1, DPM-Solver++(2M, 3M) orders 2 and 3, with the samplers of
``samplers.py`` as the special case ``a_t(k) = α_t``, ``s_t(k) = σ_t √w(k)`` (the same numbers up to
rounding). The stochastic forms (DDIM η, DDPM, DPM-Solver++(2M) SDE) inject ``s_s √(1 - e^{-2ηh}) F z``
per frequency. Frequencies whose ``λ`` does not move over a step (inverse heat's DC) keep their value
times ``a_s / a_t``; frequencies off the support follow ``x̂_s = (a_s / a_t) x̂_t``. Every sampler sees the
model only through ``D(x, t) = E[x_0 | x_t]``; the step that lands on ``t = 0`` returns ``D`` (DDIM,
the SDE) or its extrapolation to zero noise (the ODE multistep), whatever ``s_0`` is: inverse heat is
still blurred and noised at ``t = 0``. (``samplers.py`` does so where ``σ_0 = 0``, as on the linear
schedule; on the cosine one, ``σ_0 = 5.5e-4``, it takes one more ordinary step there instead.)
"""

from __future__ import annotations

import math
from functools import partial

import torch

from ..spectral import fourier
from .frequency import FrequencyProcess
from . import samplers
from .samplers import Noise, drive

INF = math.inf


def _coef(proc: FrequencyProcess, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log a_t, log s_t)`` on the half grid, float64."""
    log_a, log_s = proc.log_coefficients(torch.tensor(t, dtype=torch.float64))
    return fourier.half(log_a), fourier.half(log_s)


def _intervals(proc: FrequencyProcess, ts: torch.Tensor):
    """Yield ``(i, t, s, (log a_t, log s_t), (log a_s, log s_s))`` for each step ``t → s`` of the grid ``ts``."""
    for i in range(len(ts) - 1):
        t, s = ts[i].item(), ts[i + 1].item()
        yield i, t, s, _coef(proc, t), _coef(proc, s)


def _denoise(denoiser, proc: FrequencyProcess, x: torch.Tensor, t: float) -> torch.Tensor:
    tb = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
    return proc.consistent(denoiser(x, tb), x, tb)


def _on(log_s: torch.Tensor) -> torch.Tensor:
    return log_s > -INF


def ddim(denoiser, proc: FrequencyProcess, x, ts, eta: float = 0.0, noise: Noise | None = None, callback=None):
    """DDIM(η) per frequency: ``x̂_s = a_s D̂ + √(s_s² - c²) (x̂_t - a_t D̂) / s_t + c ẑ``,
    ``c = η s_s √(1 - e^{λ_t - λ_s})`` (``λ = 2 log(a/s)``, doubled here); η = 0 is exact for constant ``D``."""
    ndim, spatial = proc.ndim, proc.shape[1:]
    for i, t, s, (la_t, ls_t), (la_s, ls_s) in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        if s == 0:
            x = d
        else:
            on = _on(ls_t)
            ratio = torch.where(on, torch.exp(2 * (la_t - ls_t - la_s + ls_s)), 0.0).clamp(max=1.0)
            keep = torch.where(on, torch.sqrt(1 - eta**2 * (1 - ratio)) * torch.exp(ls_s - ls_t), 0.0)
            c = eta * torch.exp(ls_s) * torch.sqrt(1 - ratio)
            xf, df = fourier.rfft(x, ndim), fourier.rfft(d, ndim)
            out = torch.exp(la_s).to(x.dtype) * df + keep.to(x.dtype) * (xf - torch.exp(la_t).to(x.dtype) * df)
            if eta > 0 and bool((c > 0).any()):
                out = out + c.to(x.dtype) * fourier.rfft(noise(x), ndim)
            x = fourier.irfft(out, spatial)
        if callback is not None:
            callback(i, x, d)
    return x


def _safe_divide(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, 0 where ``den == 0`` (a frequency whose ``λ`` did not move: lower order there)."""
    return torch.where(den != 0, num / torch.where(den != 0, den, 1.0), torch.zeros((), dtype=num.dtype))


def _exp_moments(h: torch.Tensor, c: float, n: int) -> list[torch.Tensor]:
    """``∫_0^h c u^j e^{c(u - h)} du`` for ``j < n``, per frequency (``K_j = h^j - (j/c) K_{j-1}``)."""
    k = [-torch.expm1(-c * h)]
    for j in range(1, n):
        k.append(h**j - j / c * k[-1])
    return k


def _at_zero_noise(ds: list, rs: list) -> torch.Tensor:
    """Per frequency, the polynomial in ``ς²`` (``ς = s/a``) through ``ds[j]`` at ``ς = rs[j]``, at ``ς = 0``;
    ``ds[0]`` where two ``ς`` coincide or one is not finite (a frozen frequency, or one still at ``a = 0``)."""
    us = [r * r for r in rs]
    ok = torch.ones_like(us[0], dtype=torch.bool)
    for m, u in enumerate(us):
        ok &= torch.isfinite(u)
        for v in us[m + 1:]:
            ok &= u != v
    out = 0
    for j, (d, u) in enumerate(zip(ds, us)):
        weight = torch.ones_like(u)
        for m, v in enumerate(us):
            if m != j:
                weight = weight * _safe_divide(v, v - u)
        out = out + torch.where(ok, weight, 0.0).to(d.real.dtype) * d
    return torch.where(ok, out, ds[0])


def dpmpp(denoiser, proc: FrequencyProcess, x, ts, order: int = 2, eta: float = 0.0, noise: Noise | None = None,
          callback=None):
    """DPM-Solver++ multistep of any ``order`` per frequency, in ``λ(k) = log(a/s)`` (``samplers.dpmpp``'s rule:
    Newton divided differences in ``λ``, closed-form exponential moments, the published midpoint weight at order 2)."""
    ndim, spatial = proc.ndim, proc.shape[1:]
    lams, rs, ds = [], [], []
    for i, t, s, (la_t, ls_t), (la_s, ls_s) in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        on = _on(ls_t)
        lam_t = torch.where(on, la_t - ls_t, 0.0)
        lams = [lam_t] + lams[: order - 1]
        rs = [torch.where(on, torch.exp(ls_t - la_t), 0.0)] + rs[: order - 1]
        ds = [fourier.rfft(d, ndim)] + ds[: order - 1]
        if s == 0:
            x = fourier.irfft(_at_zero_noise(ds, rs), spatial) if eta == 0 else d
        else:
            h = torch.where(on, la_s - ls_s, 0.0) - lam_t
            coef = list(ds)  # Newton divided differences in λ, newest point first
            for j in range(1, len(coef)):
                for m in range(len(coef) - 1, j - 1, -1):
                    coef[m] = _safe_divide(coef[m] - coef[m - 1], (lams[m] - lams[m - j]).to(x.dtype))
            moments = _exp_moments(h, 1 + eta, len(coef))
            poly = [torch.ones_like(h)]  # coefficients in u of Π_{m<j} (u + λ_t - λ_m)
            scale = torch.where(on, torch.exp(ls_s - ls_t - eta * h), torch.exp(la_s - la_t))
            out = scale.to(x.dtype) * fourier.rfft(x, ndim)
            a_s = torch.where(on, torch.exp(la_s), 0.0)
            for j, c in enumerate(coef):
                if j > 0:
                    shift = lams[0] - lams[j - 1]
                    poly = [(poly[n - 1] if n else 0.0) + shift * (poly[n] if n < j else 0.0) for n in range(j + 1)]
                weight = moments[0] * h / 2 if (order, j) == (2, 1) else sum(p * k for p, k in zip(poly, moments))
                out = out + (a_s * weight).to(x.dtype) * c
            if eta > 0:
                out = out + (torch.exp(ls_s) * torch.sqrt(-torch.expm1(-2 * eta * h))).to(x.dtype) * \
                    fourier.rfft(noise(x), ndim)
            x = fourier.irfft(out, spatial)
        if callback is not None:
            callback(i, x, d)
    return x


# The samplers of samplers.METHODS that have a per-frequency form, with the same grid spacing and NFE per step.
_STEPS = {"ddpm": ddim, "ddim": ddim, "dpmpp_2m": partial(dpmpp, order=2), "dpmpp_3m": partial(dpmpp, order=3),
          "dpmpp_2m_sde": partial(dpmpp, order=2, eta=1.0)}
METHODS = {name: (step, *samplers.METHODS[name][1:]) for name, step in _STEPS.items()}


@torch.no_grad()
def sample(denoiser, proc: FrequencyProcess, n: int, method: str = "ddim", steps: int = 50, eta: float = 0.0,
           generator: torch.Generator | None = None, x_T: torch.Tensor | None = None, return_trajectory: bool = False,
           t_grid: torch.Tensor | None = None, device=None, dtype: torch.dtype = torch.float32, progress: bool = False,
           noise: Noise | None = None):
    """``diffusion.sample`` for a ``FrequencyProcess``: ``n`` samples ``(n, C, *spatial)`` from its prior.

    ``method``: one of this module's ``METHODS`` (``"ddpm"``, ``"ddim"``, ``"dpmpp_2m"``, ``"dpmpp_3m"``,
    ``"dpmpp_2m_sde"``); the other arguments as in ``diffusion.sample``. Grids are uniform in the
    process's reference log-SNR (``proc.schedule``), ``"ddpm"``'s uniform in ``t``.
    """
    if not isinstance(proc, FrequencyProcess):
        raise ValueError(f"proc must be a FrequencyProcess, got {type(proc).__name__}")
    return drive(METHODS, denoiser, proc, n, method, steps, eta, generator, x_T, return_trajectory, t_grid, device,
                 dtype, progress, noise)
