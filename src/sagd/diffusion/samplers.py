"""Samplers for SAGD (docs/method.md §6), each a short function of ``(denoiser, proc, x, ts, ...)``.

Every sampler sees the model only through the denoiser ``D(x, t) = E[x_0 | x_t]``. Anisotropy
enters through the prior draw ``Σ^{1/2} z``, the noise injected by stochastic samplers, and
the denoiser; deterministic updates written in ``D`` are the isotropic formulas unchanged.
Grids run from ``t = 1`` down to ``t = 0``. ``steps`` counts grid intervals; a denoiser call
is one NFE, and ``nfe(method, steps)`` says how many a method makes (Heun: two per step but the
last). Stochastic samplers draw white noise through ``noise(like)`` (``torch.randn`` by default,
something else for the exact evaluator, ``sagd.diffusion.exact``) and color it with ``Σ^{1/2}``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..progress import shown
from .process import VPProcess

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Noise = Callable[[torch.Tensor], torch.Tensor]


class Counted:
    """A denoiser that counts its calls: one call is one NFE for the batch ``(B, C, *spatial)`` it is given."""

    def __init__(self, denoiser: Denoiser):
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.denoiser(x, t)


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


def _colored(proc: VPProcess, noise: Noise, x: torch.Tensor) -> torch.Tensor:
    """A colored draw ``Σ^{1/2} z``, ``z = noise(x)`` white and shaped like ``x``."""
    return proc.cov.sqrt(noise(x))


def _at_zero_noise(ds: list, rs: list) -> torch.Tensor:
    """The polynomial in ``ς²`` through the denoised ``ds[j]`` at ``ς = rs[j]`` (``ς = σ/α``), at ``ς = 0``.

    Along the PF-ODE ``D = y + ς² Σ ∇log p`` and ``dy/dς = O(ς)``, so ``D`` is a function of ``ς²``
    tending to the sample ``y(0)``; integrating the ODE into ``t = 0`` with ``D`` so interpolated
    gives exactly this extrapolation (the step a multistep solver cannot take in ``λ = ∞``).
    """
    us = [r * r for r in rs]
    out = 0
    for j, (d, u) in enumerate(zip(ds, us)):
        out = out + d * math.prod(v / (v - u) for m, v in enumerate(us) if m != j)
    return out


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


def ddim(denoiser, proc, x, ts, eta: float = 0.0, noise=None, callback=None):
    """DDIM(η): ``x_s = α_s D + √(σ_s² - c²) n̂ + c Σ^{1/2} z``; η=0 deterministic, η=1 is DDPM."""
    for i, t, s, coef_t, coef_s in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        x = ddim_update(x, d, coef_t, coef_s, eta, lambda: _colored(proc, noise, x))
        if callback is not None:
            callback(i, x, d)
    return x


def euler_maruyama(denoiser, proc, x, ts, noise=None, callback=None):
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
            x = x + math.sqrt(beta * dt) * _colored(proc, noise, x)
        if callback is not None:
            callback(i, x, d)
    return x


def heun(denoiser, proc, x, ts, noise=None, callback=None):
    """Heun's method on the probability-flow ODE in EDM's variables; two NFE per step, one for the last.

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


def _exp_moments(h: float, c: float, n: int) -> list[float]:
    """``∫_0^h c u^j e^{c(u - h)} du`` for ``j < n`` (by parts: ``K_j = h^j - (j/c) K_{j-1}``)."""
    k = [-math.expm1(-c * h)]
    for j in range(1, n):
        k.append(h**j - j / c * k[-1])
    return k


def dpmpp(denoiser, proc, x, ts, order: int = 2, eta: float = 0.0, noise=None, callback=None):
    """DPM-Solver++ multistep (Lu et al. 2022) of any ``order`` in the data prediction ``D``.

    In ``λ = log(α/σ)`` a step ``t → s`` (``h = λ_s - λ_t``) is exactly
    ``x_s = (σ_s/σ_t) e^{-ηh} x_t + α_s ∫_0^h (1+η) e^{(1+η)(u-h)} D(λ_t + u) du + σ_s √(1 - e^{-2ηh}) Σ^{1/2} z``,
    η = 0 the probability-flow ODE, η = 1 the reverse SDE (colored noise). ``D`` is the polynomial
    through the last ``order`` denoised values (fewer at the start), integrated in closed form;
    order 2 weighs its slope by ``K_0 h / 2`` instead, the published "midpoint" DPM-Solver++(2M)
    (and k-diffusion's 2M SDE), whose error constant the exact evaluator finds 2-4 times smaller.
    The step into ``t = 0`` (``h = ∞``) extrapolates the same values to ``ς = σ/α = 0`` instead on
    the ODE; on the SDE, whose ``D`` is not smooth along a path, it returns ``D``, the exact step
    with ``D`` frozen (extrapolating the noisy differences inflates the variance).
    """
    lams, rs, ds = [], [], []
    for i, t, s, (a_t, s_t), (a_s, s_s) in _intervals(proc, ts):
        d = _denoise(denoiser, proc, x, t)
        lams, rs, ds = [math.log(a_t / s_t)] + lams[: order - 1], [s_t / a_t] + rs[: order - 1], [d] + ds[: order - 1]
        if s_s == 0:
            x = _at_zero_noise(ds, rs) if eta == 0 else d
        else:
            h = math.log(a_s / s_s) - lams[0]
            coef = list(ds)  # Newton divided differences in λ, newest point first
            for j in range(1, len(coef)):
                for m in range(len(coef) - 1, j - 1, -1):
                    coef[m] = (coef[m] - coef[m - 1]) / (lams[m] - lams[m - j])
            moments = _exp_moments(h, 1 + eta, len(coef))
            poly = [1.0]  # coefficients in u of Π_{m<j} (u + λ_t - λ_m)
            x = (s_s / s_t) * math.exp(-eta * h) * x
            for j, c in enumerate(coef):
                if j > 0:
                    shift = lams[0] - lams[j - 1]
                    poly = [(poly[n - 1] if n else 0.0) + shift * (poly[n] if n < j else 0.0) for n in range(j + 1)]
                weight = moments[0] * h / 2 if (order, j) == (2, 1) else sum(p * k for p, k in zip(poly, moments))
                x = x + a_s * weight * c
            if eta > 0:
                x = x + s_s * math.sqrt(-math.expm1(-2 * eta * h)) * _colored(proc, noise, x)
        if callback is not None:
            callback(i, x, d)
    return x


# method -> (sampler, default grid spacing, NFE per step but the last); "ddpm" is DDIM with η = 1.
METHODS = {
    "ddpm": (ddim, "uniform", 1),
    "ddim": (ddim, "logsnr", 1),
    "euler_maruyama": (euler_maruyama, "logsnr", 1),
    "heun": (heun, "logsnr", 2),
    "dpmpp_2m": (partial(dpmpp, order=2), "logsnr", 1),
    "dpmpp_3m": (partial(dpmpp, order=3), "logsnr", 1),
    "dpmpp_2m_sde": (partial(dpmpp, order=2, eta=1.0), "logsnr", 1),
}


def check_method(method: str, methods: dict | None = None) -> str:
    methods = METHODS if methods is None else methods
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
    return method


def nfe(method: str, steps: int) -> int:
    """Denoiser evaluations of ``method`` over ``steps`` grid intervals (the step into ``t = 0`` makes one)."""
    return METHODS[check_method(method)][2] * (check_steps(steps) - 1) + 1


def steps_for_nfe(method: str, budget: int) -> int:
    """The most grid intervals ``method`` can take within ``budget`` denoiser evaluations."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be an integer >= 1, got {budget!r}")
    return (budget - 1) // METHODS[check_method(method)][2] + 1


def check_grid(t_grid) -> torch.Tensor:
    ts = torch.as_tensor(t_grid, dtype=torch.float64).flatten()
    if len(ts) < 2 or ts[0] != 1 or ts[-1] != 0 or not (ts[1:] < ts[:-1]).all():
        raise ValueError("t_grid must decrease strictly from 1 to 0 with at least two entries")
    return ts


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
    noise: Noise | None = None,
):
    """Draw ``n`` samples, shape ``(n, C, *spatial)``, by integrating from the prior ``N(0, σ_1² Σ)``.

    Args:
        denoiser: ``D(x, t) -> E[x_0 | x_t]``, ``x`` of shape ``(n, C, *spatial)``, ``t`` of shape ``(n,)``.
        method: one of ``METHODS``: ``"ddpm"``, ``"ddim"``, ``"euler_maruyama"``, ``"heun"``,
            ``"dpmpp_2m"``, ``"dpmpp_3m"``, ``"dpmpp_2m_sde"``.
        steps: number of grid intervals; the denoiser is called ``nfe(method, steps)`` times
            (``steps`` for every method but Heun, which makes ``2 steps - 1``).
        eta: DDIM stochasticity (``method="ddim"`` only; DDPM is η = 1).
        x_T: a starting point at ``t = 1`` instead of a prior draw.
        t_grid: explicit decreasing times from 1 to 0 (``steps + 1`` of them, e.g. from
            ``diffusion.optimized_grid``) instead of the method's default grid; ``steps`` is then ignored.
        return_trajectory: also return ``x`` after every step, a list of ``steps + 1`` tensors.
        noise: ``noise(like)`` gives the white noise stochastic samplers inject, shaped like ``like``
            (default: ``torch.randn`` with ``generator``).
        progress: a bar of the steps (tqdm's; ``TQDM_DISABLE=1`` in the environment still hides it).
    """
    return drive(METHODS, denoiser, proc, n, method, steps, eta, generator, x_T, return_trajectory, t_grid, device,
                 dtype, progress, noise)


def drive(methods: dict, denoiser, proc, n, method, steps, eta, generator, x_T, return_trajectory, t_grid, device,
          dtype, progress, noise):
    """``sample``'s body for any table ``methods`` (``METHODS``, ``frequency_samplers.METHODS``) and any process
    with ``shape``, ``prior_sample``, ``log_snr``, ``t_from_log_snr`` and ``t_min``."""
    step_fn, spacing, _ = methods[check_method(method, methods)]
    if not (isinstance(eta, (int, float)) and 0 <= eta <= 1):
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
    if eta != 0 and method != "ddim":
        raise ValueError(f"eta is used by method='ddim' only, got eta={eta} with method={method!r}")
    ts = time_grid(proc, steps, spacing) if t_grid is None else check_grid(t_grid)
    if x_T is None:
        x = proc.prior_sample(n, generator=generator, device=device, dtype=dtype)
    else:
        if tuple(x_T.shape[1:]) != proc.shape:
            raise ValueError(f"x_T must have shape (n, *{proc.shape}), got {tuple(x_T.shape)}")
        x = x_T.clone()
    if noise is None:
        def noise(like):
            return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    trajectory = [x]
    bar = tqdm(total=len(ts) - 1, desc=method, leave=False, **shown(progress))

    def callback(i, x_i, d_i):
        bar.update(1)
        if return_trajectory:
            trajectory.append(x_i)

    kwargs = {"eta": 1.0 if method == "ddpm" else eta} if method in ("ddim", "ddpm") else {}
    x = step_fn(denoiser, proc, x, ts, noise=noise, callback=callback, **kwargs)
    bar.close()
    return (x, trajectory) if return_trajectory else x
