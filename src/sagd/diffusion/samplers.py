"""Samplers for SAGD (SAGD.md §4), each a short function of ``(denoiser, proc, x, ts, ...)``.

Every sampler sees the model only through the denoiser ``D(x, t) = E[x_0 | x_t]``. Anisotropy
enters through the prior draw ``Σ^{1/2} z``, the noise injected by stochastic samplers, and
the denoiser; deterministic updates written in ``D`` are the isotropic formulas unchanged.
Grids run from ``t = 1`` down to ``t = 0``; the step that lands on ``t = 0`` returns ``D``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from tqdm.auto import tqdm

from .process import VPProcess

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def time_grid(proc: VPProcess, steps: int, spacing: str = "logsnr") -> torch.Tensor:
    """``steps + 1`` times from 1 down to 0, float64.

    The first ``steps`` times run from 1 to ``proc.t_min``, uniform in log-SNR (``"logsnr"``,
    good for DDIM, Heun and DPM-Solver++) or in ``t`` (``"uniform"``, DDPM's); the last is 0.
    """
    steps = check_steps(steps)
    if spacing not in ("logsnr", "uniform"):
        raise ValueError(f"spacing must be 'logsnr' or 'uniform', got {spacing!r}")
    ends = torch.tensor([1.0, proc.t_min], dtype=torch.float64)
    if steps == 1:
        inner = ends[:1]
    elif spacing == "uniform":
        inner = torch.linspace(1.0, proc.t_min, steps, dtype=torch.float64)
    else:
        lam = proc.log_snr(ends)
        inner = proc.t_from_log_snr(torch.linspace(lam[0].item(), lam[1].item(), steps, dtype=torch.float64))
        inner[0], inner[-1] = 1.0, proc.t_min
    return torch.cat([inner, torch.zeros(1, dtype=torch.float64)])


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return steps


def _denoise(denoiser: Denoiser, proc: VPProcess, x: torch.Tensor, t: float) -> torch.Tensor:
    tb = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
    return proc.consistent(denoiser(x, tb), x, tb)


def _coef(proc: VPProcess, t: float) -> tuple[float, float]:
    tt = torch.tensor(t, dtype=torch.float64)
    return proc.alpha(tt).item(), proc.sigma(tt).item()


def _intervals(proc: VPProcess, ts: torch.Tensor):
    """Yield ``(i, t, s, (α_t, σ_t), (α_s, σ_s))`` for each step ``t → s`` of the grid ``ts``."""
    for i in range(len(ts) - 1):
        t, s = ts[i].item(), ts[i + 1].item()
        yield i, t, s, _coef(proc, t), _coef(proc, s)


def _colored_noise(proc: VPProcess, x: torch.Tensor, generator) -> torch.Tensor:
    z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return proc.cov.sqrt(z)


def ddim_update(x, d, coef_t: tuple[float, float], coef_s: tuple[float, float], eta: float, noise: Callable):
    """One DDIM(η) step ``t → s`` in the denoised estimate ``d``: ``α_s D + √(σ_s² - c²) n̂ + c · noise()``
    with ``n̂ = (x - α_t D) / σ_t``; ``noise()`` (colored) is called only when ``c > 0``; ``σ_s = 0`` gives ``D``."""
    (a_t, s_t), (a_s, s_s) = coef_t, coef_s
    if s_s == 0:
        return d
    c = eta * s_s * math.sqrt(max(0.0, 1 - (a_t * s_s) ** 2 / (a_s * s_t) ** 2))
    n_hat = (x - a_t * d) / s_t
    out = a_s * d + math.sqrt(max(0.0, s_s**2 - c**2)) * n_hat
    return out + c * noise() if c > 0 else out


def ddim(denoiser, proc, x, ts, eta: float = 0.0, generator=None, callback=None):
    """DDIM(η): ``x_s = α_s D + √(σ_s² - c²) n̂ + c Σ^{1/2} z``; η=0 deterministic, η=1 is DDPM."""
    for i, t, s, coef_t, coef_s in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        x = ddim_update(x, d, coef_t, coef_s, eta, lambda: _colored_noise(proc, x, generator))
        if callback is not None:
            callback(i, x, d)
    return x


def euler_maruyama(denoiser, proc, x, ts, generator=None, callback=None):
    """The reverse SDE ``dx = [f x - g² Σ ∇log p_t] dt + g Σ^{1/2} dw̄``, Euler–Maruyama steps.

    With ``Σ ∇log p_t = -(x - α_t D) / σ_t²`` the drift needs only ``D``; the noise is colored.
    """
    for i, t, s, (a_t, s_t), _ in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        if s == 0:
            x = d
        else:
            beta, dt = proc.beta(torch.tensor(t, dtype=torch.float64)).item(), t - s
            x = x + dt * beta * (0.5 * x - (x - a_t * d) / s_t**2)
            x = x + math.sqrt(beta * dt) * _colored_noise(proc, x, generator)
        if callback is not None:
            callback(i, x, d)
    return x


def heun(denoiser, proc, x, ts, generator=None, callback=None):
    """Heun's method on the probability-flow ODE in EDM's variables.

    With ``y = x / α`` and ``ς = σ / α`` the PF-ODE is ``dy/dς = (y - D) / ς``; Σ cancels.
    """
    for i, t, s, (a_t, s_t), (a_s, s_s) in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        if s_s == 0:
            x = d
        else:
            r_t, r_s = s_t / a_t, s_s / a_s
            y = x / a_t
            slope = (y - d) / r_t
            y_next = y + (r_s - r_t) * slope
            d_next = _denoise(denoiser, proc, a_s * y_next, s)
            y = y + (r_s - r_t) * 0.5 * (slope + (y_next - d_next) / r_s)
            x = a_s * y
        if callback is not None:
            callback(i, x, d)
    return x


def dpmpp_2m(denoiser, proc, x, ts, generator=None, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in the data prediction ``D``."""
    d_prev, h_prev = None, None
    for i, t, s, (a_t, s_t), (a_s, s_s) in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        if s_s == 0:
            x = d
        else:
            h = math.log(a_s / s_s) - math.log(a_t / s_t)
            d_eff = d
            if d_prev is not None:
                r = h_prev / h
                d_eff = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * d_prev
            x = (s_s / s_t) * x - a_s * math.expm1(-h) * d_eff
            d_prev, h_prev = d, h
        if callback is not None:
            callback(i, x, d)
    return x


# method -> (sampler, default grid spacing); "ddpm" is ancestral sampling, i.e. DDIM with η = 1.
METHODS = {
    "ddpm": (ddim, "uniform"),
    "ddim": (ddim, "logsnr"),
    "euler_maruyama": (euler_maruyama, "logsnr"),
    "heun": (heun, "logsnr"),
    "dpmpp_2m": (dpmpp_2m, "logsnr"),
}


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    proc: VPProcess,
    n: int,
    method: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    return_trajectory: bool = False,
    t_grid: torch.Tensor | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
):
    """Draw ``n`` samples, shape ``(n, C, *spatial)``, by integrating from the prior ``N(0, σ_1² Σ)``.

    Args:
        denoiser: ``D(x, t) -> E[x_0 | x_t]``, ``x`` of shape ``(n, C, *spatial)``, ``t`` of shape ``(n,)``.
        method: ``"ddpm"``, ``"ddim"``, ``"euler_maruyama"``, ``"heun"`` or ``"dpmpp_2m"``.
        steps: number of grid intervals (denoiser calls; Heun makes about two per step).
        eta: DDIM stochasticity (``method="ddim"`` only; DDPM is η = 1).
        x_T: a starting point at ``t = 1`` instead of a prior draw.
        t_grid: explicit decreasing times from 1 to 0 instead of the method's default grid.
        return_trajectory: also return ``x`` after every step, a list of ``steps + 1`` tensors.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    step_fn, spacing = METHODS[method]
    if not (isinstance(eta, (int, float)) and 0 <= eta <= 1):
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
    if eta != 0 and method != "ddim":
        raise ValueError(f"eta is used by method='ddim' only, got eta={eta} with method={method!r}")
    if t_grid is None:
        ts = time_grid(proc, steps, spacing)
    else:
        ts = torch.as_tensor(t_grid, dtype=torch.float64).flatten()
        if len(ts) < 2 or ts[0] != 1 or ts[-1] != 0 or not (ts[1:] < ts[:-1]).all():
            raise ValueError("t_grid must decrease strictly from 1 to 0 with at least two entries")
    if x_T is None:
        x = proc.prior_sample(n, generator=generator, device=device, dtype=dtype)
    else:
        if tuple(x_T.shape[1:]) != proc.shape:
            raise ValueError(f"x_T must have shape (n, *{proc.shape}), got {tuple(x_T.shape)}")
        x = x_T.clone()
    trajectory = [x]
    bar = tqdm(total=len(ts) - 1, desc=method, disable=not progress, leave=False)

    def callback(i, x_i, d_i):
        bar.update(1)
        if return_trajectory:
            trajectory.append(x_i)

    kwargs = {"eta": 1.0 if method == "ddpm" else eta} if step_fn is ddim else {}
    x = step_fn(denoiser, proc, x, ts, generator=generator, callback=callback, **kwargs)
    bar.close()
    return (x, trajectory) if return_trajectory else x
