"""The frequency-diagonal process ``x_t = Fᴴ diag(a_t) F x_0 + Fᴴ diag(s_t) F ε`` (docs/method.md §11).

Every frequency ``k`` of the orthonormal DFT evolves on its own: ``x̂_t(k) = a_t(k) x̂_0(k) + s_t(k) ε̂(k)``.
Shaping ``s`` is SAGD; shaping ``a`` blurs. One class holds them all, built by the schemes below:

* ``sagd(cov, schedule)``: ``a_t(k) = α_t``, ``s_t(k) = σ_t √w(k)``, the ``VPProcess`` of the same ``Σ``
  (isotropic, power laws, ``offset``, ``data_matched:gamma=1`` = EqualSNR, ``pyramid``, ...);
* ``blurring(shape)``: Hoogeboom & Salimans (2022), ``a_t(k) = α_t ((1 - d_min) e^{-λ_k τ_t} + d_min)``,
  ``s_t(k) = σ_t``, ``τ_t = ½ (σ_B,max sin²(πt/2))²``, ``(α_t, σ_t)`` the cosine schedule;
* ``inverse_heat(shape)``: Rissanen et al. (2023), ``a_t(k) = e^{-λ_k τ_t}``, ``s_t(k) = δ``,
  ``τ_t = ½ σ_B(t)²`` with ``σ_B`` log-spaced from ``σ_B,min`` to ``σ_B,max``.

``λ_k = (2π|k|)²`` are the heat equation's eigenvalues (``spectral.fourier.heat_eigenvalues``).
Coefficients are float64 tensors ``(C, *spatial)`` on the full grid, even in ``k``; the process
computes them as logarithms, ``log a`` and ``log s``, so that a frequency blurred to ``a = 0`` in
float64 (inverse heat at ``t = 1``) keeps a finite log-SNR ``λ_t(k) = 2 (log a - log s)``.
Frequencies with ``s = 0`` at every ``t`` (a stopped band) lie outside the support, as in ``VPProcess``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from ..spectral import SpectralCovariance
from ..spectral import fourier
from ..spectral.grid import check_shape, negate_frequencies
from .process import VPProcess, draw_device
from .schedules import CosineSchedule, get_schedule

LogCoefficients = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class LogBlurSchedule:
    """The reference log-SNR ``λ(t) = -2 log σ_B(t)`` of inverse heat dissipation's time grids.

    ``σ_B(t) = σ_B,min^{1-t} σ_B,max^t``: a grid uniform in this ``λ`` is uniform in ``t``, the
    logarithmic spacing of blur widths that Rissanen et al. use.
    """

    name = "log_blur"

    def __init__(self, sigma_blur_min: float, sigma_blur_max: float):
        self.lo, self.hi = math.log(sigma_blur_min), math.log(sigma_blur_max)

    def log_sigma_blur(self, t: torch.Tensor) -> torch.Tensor:
        return self.lo + (self.hi - self.lo) * t

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return -2 * self.log_sigma_blur(torch.as_tensor(t))

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        return (-0.5 * torch.as_tensor(lam) - self.lo) / (self.hi - self.lo)


class MeanLogSNR:
    """The reference log-SNR ``λ̄(t)`` of a process that noises every frequency: its per-frequency
    log-SNR (``FrequencyProcess.log_snr_k``) averaged over the frequencies; ``schedule=None`` gives a
    ``FrequencyProcess`` this one. Blurring diffusion's time grids are uniform in it.

    Blurring moves each frequency's log-SNR at its own time (``e^{-λ_k τ_t}`` falls to ``d_min`` early for
    high ``k``, late for low ones). A grid uniform in ``λ̄`` follows the average; one uniform in the
    cosine schedule's ``λ`` skips most of it, and its samplers' exact KL is 4 to 20 times higher
    (``benchmarks/frequency_schemes.md``). ``λ̄`` must fall strictly with ``t``; ``t_from_log_snr``
    inverts it by bisection to float64 rounding. (Inverse heat keeps ``LogBlurSchedule``: its ``λ̄``,
    dominated by frequencies blurred to ``a = 0``, gives far worse grids.)
    """

    name = "mean_log_snr"

    def __init__(self, proc: "FrequencyProcess"):
        self.proc = proc

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64)
        return self.proc.log_snr_k(t).flatten(t.dim()).mean(-1)

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        lam = torch.as_tensor(lam, dtype=torch.float64)
        lo, hi = torch.zeros_like(lam), torch.ones_like(lam)
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            later = self.log_snr(mid) > lam  # still above the target at mid: the time lies later
            lo, hi = torch.where(later, mid, lo), torch.where(later, hi, mid)
        return 0.5 * (lo + hi)


class FrequencyProcess:
    """A Gaussian process diagonal in Fourier: ``q(x̂_t(k) | x̂_0(k)) = N(a_t(k) x̂_0(k), s_t(k)²)``, ``t ∈ [0, 1]``.

    Args:
        shape: the sample shape ``(C, *spatial)``.
        log_coefficients: ``t ↦ (log a_t, log s_t)``; ``t`` a float64 tensor of shape ``(..., 1, 1[, 1...])``
            (one trailing 1 per axis of ``shape``), the results broadcastable to ``(..., C, *spatial)``,
            even in ``k``, ``log s = -inf`` where a frequency is never noised. Written in torch operations,
            so that ``torch.func.jvp`` differentiates it (the drift of the SDE, ``drift``).
        schedule: the reference log-SNR ``λ(t)`` that time grids are uniform in: an object with
            ``log_snr(t)`` and ``t_from_log_snr(λ)`` (``schedules.LinearSchedule``, ``LogBlurSchedule``),
            or ``None``: the mean of the process's own per-frequency log-SNR (``MeanLogSNR``; every
            frequency must be noised).
        t_min: the smallest time of training and sampling grids.
        name: what ``repr`` calls the scheme.

    The prior, the law sampling starts from, is ``N(0, Fᴴ diag(s_1²) F)`` unless ``with_prior`` sets
    another (inverse heat keeps ``a_1(0) = 1``: its prior must carry the data's mean and DC power).
    Tensors ``x`` have shape ``(B, C, *spatial)``, ``t`` shape ``(B,)`` or a scalar.
    """

    def __init__(self, shape: Sequence[int], log_coefficients: LogCoefficients, schedule, t_min: float = 1e-3,
                 name: str = "custom"):
        self._shape = check_shape(shape)
        if not callable(log_coefficients):
            raise ValueError(f"log_coefficients must be a callable t -> (log a_t, log s_t), got {log_coefficients!r}")
        if schedule is not None and not (hasattr(schedule, "log_snr") and hasattr(schedule, "t_from_log_snr")):
            raise ValueError(f"schedule must have log_snr(t) and t_from_log_snr(lam), or be None, got {schedule!r}")
        if not 0 < t_min < 1:
            raise ValueError(f"t_min must be in (0, 1), got {t_min}")
        self._fn, self.schedule, self.t_min, self.name = log_coefficients, schedule, float(t_min), name
        self._prior = None
        supports = []
        for t in (1.0, self.t_min):
            log_a, log_s = self.log_coefficients(torch.tensor(t, dtype=torch.float64))
            if torch.isnan(log_a).any() or torch.isnan(log_s).any() or (log_a == math.inf).any() or \
                    (log_s == math.inf).any() or (log_a == -math.inf).any():
                raise ValueError(f"log_coefficients must give finite log a_t and log s_t < inf at t={t}")
            ndim = len(self._shape) - 1
            for c in (log_a, log_s):
                if not torch.equal(c, negate_frequencies(c, ndim)):
                    raise ValueError(f"log_coefficients must be even in k (c(k) = c(-k)) at t={t}")
            supports.append(log_s > -math.inf)
        if not torch.equal(*supports):
            raise ValueError("log_coefficients must noise the same frequencies (log s > -inf) at every t")
        self._support = supports[0]
        if not self._support.flatten(1).any(1).all():
            raise ValueError("log_coefficients noise no frequency in some channel (log s = -inf everywhere)")
        if schedule is None:
            if not self.full_support:
                raise ValueError("schedule None averages every frequency's log-SNR: "
                                 "log_coefficients must noise them all")
            self.schedule = MeanLogSNR(self)

    def __repr__(self) -> str:
        return f"FrequencyProcess({self.name}, shape={self.shape}, t_min={self.t_min})"

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        """The number of spatial axes."""
        return len(self._shape) - 1

    @property
    def support(self) -> torch.Tensor:
        """``s_t(k) > 0``, bool ``(C, *spatial)``: the frequencies the process noises."""
        return self._support.clone()

    @property
    def full_support(self) -> bool:
        return bool(self._support.all())

    # ------------------------------------------------------------------ coefficients
    def log_coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log a_t, log s_t)``, each ``(*t.shape, C, *spatial)`` float64, for times ``t`` of any shape."""
        t = torch.as_tensor(t, dtype=torch.float64)
        tt = t.reshape(*t.shape, *([1] * len(self._shape)))
        log_a, log_s = self._fn(tt)
        out = (*t.shape, *self._shape)
        return torch.as_tensor(log_a, dtype=torch.float64).expand(out), torch.as_tensor(log_s, dtype=torch.float64).expand(out)

    def coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a_t, s_t)``, each ``(*t.shape, C, *spatial)`` float64."""
        log_a, log_s = self.log_coefficients(t)
        return log_a.exp(), log_s.exp()

    def log_snr_k(self, t: torch.Tensor) -> torch.Tensor:
        """The per-frequency log-SNR ``λ_t(k) = 2 (log a_t(k) - log s_t(k))`` (``+inf`` off the support)."""
        log_a, log_s = self.log_coefficients(t)
        return 2 * (log_a - log_s)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """The reference log-SNR of time grids (``schedule``), not a frequency's: see ``log_snr_k``."""
        return self.schedule.log_snr(torch.as_tensor(t))

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        return self.schedule.t_from_log_snr(torch.as_tensor(lam))

    def drift(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f_t(k), g_t(k)²)`` of the per-frequency SDE ``dx̂ = f x̂ dt + g dŵ``, each ``(C, *spatial)`` float64.

        ``f = d log a / dt`` and ``g² = d s²/dt - 2 f s² = 2 s² d(log s - log a)/dt``, by forward-mode
        differentiation of ``log_coefficients``; ``g² ≥ 0`` wherever the frequency's SNR falls with ``t``.
        """
        tt = torch.tensor(float(t), dtype=torch.float64)
        (log_a, log_s), (da, ds) = torch.func.jvp(self.log_coefficients, (tt,), (torch.ones_like(tt),))
        s2 = torch.exp(2 * log_s)
        return da, torch.where(s2 > 0, 2 * s2 * (ds - da), torch.zeros_like(s2))

    # ------------------------------------------------------------------ operators
    def multiply(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``Fᴴ diag(c) F x`` for ``x`` ``(B, C, *spatial)`` and ``c`` ``(C, *spatial)`` or ``(B, C, *spatial)``."""
        return fourier.multiply(x, c, self.ndim)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``x_t = Fᴴ (a_t ⊙ F x0 + s_t ⊙ F ε)`` for white ``ε`` (drawn when not given); ``t`` ``(B,)`` or a scalar."""
        if eps is None:
            eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        a, s = (c.to(x0.device) for c in self.coefficients(t))
        return self.multiply(x0, a) + self.multiply(eps, s)

    def consistent(self, d: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``D`` made exact off the support, where ``x̂_t = a_t x̂_0`` and so ``E[x̂_0 | x_t] = x̂_t / a_t``."""
        if self.full_support:
            return d
        a = self.coefficients(torch.as_tensor(t).flatten()[0])[0].to(x.device)
        off = (~self._support).to(torch.float64).to(x.device)
        return self.multiply(d, 1 - off) + self.multiply(x, off / a)

    # ------------------------------------------------------------------ prior
    def prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, power)`` of the prior ``N(mean, Fᴴ diag(power) F)``, each ``(C, *spatial)`` float64."""
        if self._prior is not None:
            return tuple(p.clone() for p in self._prior)
        s = self.coefficients(torch.tensor(1.0, dtype=torch.float64))[1]
        return torch.zeros(self._shape, dtype=torch.float64), s**2

    def with_prior(self, mean: torch.Tensor, power: torch.Tensor) -> "FrequencyProcess":
        """A copy that starts sampling from ``N(mean, Fᴴ diag(power) F)`` (``(C, *spatial)``, ``power ≥ 0`` even)."""
        mean = torch.as_tensor(mean, dtype=torch.float64)
        power = torch.as_tensor(power, dtype=torch.float64)
        if mean.shape != self._shape or power.shape != self._shape:
            raise ValueError(f"prior mean and power must have shape {self._shape}, got {tuple(mean.shape)} and "
                             f"{tuple(power.shape)}")
        if not torch.isfinite(power).all() or (power < 0).any() or \
                not torch.allclose(power, negate_frequencies(power, self.ndim)):
            raise ValueError("prior power must be finite, >= 0 and even in k")
        out = object.__new__(FrequencyProcess)
        out.__dict__.update(self.__dict__)
        out._prior = (mean.clone(), power.clone())
        return out

    def prior_sample(self, n: int, generator: torch.Generator | None = None, device=None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``n`` draws of the prior, shape ``(n, C, *spatial)``."""
        device = draw_device(n, generator, device)
        mean, power = self.prior()
        z = torch.randn((int(n), *self._shape), generator=generator, device=device, dtype=dtype)
        return mean.to(device=device, dtype=dtype) + self.multiply(z, power.sqrt())


# ---------------------------------------------------------------------- schemes
def sagd(cov: SpectralCovariance, schedule: str = "linear", t_min: float = 1e-3) -> FrequencyProcess:
    """SAGD as a frequency-diagonal process: ``a_t(k) = α_t``, ``s_t(k) = σ_t √w(k)``, ``α_t² = sigmoid(λ_t)``.

    The same law as ``VPProcess(cov, schedule, t_min=t_min)`` (which stays the implementation that
    ``diffusion.sample`` and training use); ``w = 0`` leaves a frequency outside the support.
    """
    if not isinstance(cov, SpectralCovariance):
        raise ValueError(f"cov must be a SpectralCovariance, got {type(cov).__name__}")
    sched = get_schedule(schedule)
    half_log_w = 0.5 * torch.log(cov.weights)  # -inf off the support

    def log_coefficients(t):
        lam = sched.log_snr(t)
        return 0.5 * torch.nn.functional.logsigmoid(lam), 0.5 * torch.nn.functional.logsigmoid(-lam) + half_log_w

    return FrequencyProcess(cov.shape, log_coefficients, sched, t_min, name=f"sagd({sched.name})")


def from_vp(proc: VPProcess) -> FrequencyProcess:
    """The frequency-diagonal form of a ``VPProcess`` (``noise="exact"``: the per-draw noise is not Gaussian)."""
    if not isinstance(proc, VPProcess):
        raise ValueError(f"proc must be a VPProcess, got {type(proc).__name__}")
    if proc.noise != "exact":
        raise ValueError(f"only noise='exact' is frequency-diagonal and Gaussian, got {proc.noise!r}")
    return sagd(proc.cov, proc.schedule, proc.t_min)


def _positive(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 0, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def blurring(shape: Sequence[int], sigma_blur_max: float = 20.0, min_scale: float = 1e-3, schedule: str = "cosine",
             t_min: float = 1e-3) -> FrequencyProcess:
    """Blurring diffusion (Hoogeboom & Salimans, ICLR 2023) with its published schedule.

    ``a_t(k) = α_t d_t(k)``, ``d_t(k) = (1 - d_min) e^{-λ_k τ_t} + d_min``, ``s_t(k) = σ_t`` (white noise);
    ``τ_t = σ_B,t² / 2`` with ``σ_B,t = σ_B,max sin²(πt/2)`` (``σ_B,max = 20``, ``d_min = min_scale = 0.001``)
    and ``(α_t, σ_t)`` the paper's cosine schedule, log-SNR from +10 at ``t = 0`` to -10 at ``t = 1`` (its
    listing's bounds; ``schedule="cosine"`` elsewhere spans ±15), or ``schedule="linear"``. The paper
    blurs in the DCT (reflecting edges); here the DFT (periodic edges), with the same eigenvalues ``λ_k``
    per frequency (``heat_eigenvalues``). Time grids are uniform in its mean log-SNR (``MeanLogSNR``).
    """
    shape = check_shape(shape)
    sigma_blur_max = _positive("sigma_blur_max", sigma_blur_max)
    min_scale = _positive("min_scale", min_scale)
    if min_scale >= 1:
        raise ValueError(f"min_scale must be in (0, 1), got {min_scale}")
    sched = CosineSchedule(logsnr_min=-10.0, logsnr_max=10.0) if schedule == "cosine" else get_schedule(schedule)
    lam_k = fourier.heat_eigenvalues(shape[1:])

    def log_coefficients(t):
        tau = 0.5 * (sigma_blur_max * torch.sin(0.5 * torch.pi * t) ** 2) ** 2
        log_d = torch.log((1 - min_scale) * torch.exp(-lam_k * tau) + min_scale)
        lam = sched.log_snr(t)
        return 0.5 * torch.nn.functional.logsigmoid(lam) + log_d, 0.5 * torch.nn.functional.logsigmoid(-lam)

    return FrequencyProcess(shape, log_coefficients, None, t_min,
                            name=f"blurring(σ_B,max={sigma_blur_max:g}, "
                                 f"d_min={min_scale:g}, {sched.name}{' ±10' if schedule == 'cosine' else ''})")


def inverse_heat(shape: Sequence[int], sigma_blur_min: float = 0.5, sigma_blur_max: float = 20.0,
                 noise: float = 0.01, t_min: float = 1e-3) -> FrequencyProcess:
    """Inverse heat dissipation (Rissanen et al., ICLR 2023) in continuous time.

    ``a_t(k) = e^{-λ_k τ_t}``, ``τ_t = σ_B(t)² / 2``, ``σ_B(t) = σ_B,min^{1-t} σ_B,max^t`` (their ``K`` blur
    levels, log-spaced from 0.5 to 20, made continuous), and a constant noise ``s_t(k) = δ = noise``
    (0.01). It fits the form; unlike diffusion it never destroys the mean: ``a_t(0) = 1``, so the
    terminal law keeps the data's DC and ``with_prior`` must give it one (the paper fits it to
    blurred training images). At ``t = 0`` the process is still blurred by ``σ_B,min``: ``D = E[x_0 | x_t]``
    returns the unblurred data, and the step into ``t = 0`` is ``D``, the paper's last step.
    """
    shape = check_shape(shape)
    sigma_blur_min = _positive("sigma_blur_min", sigma_blur_min)
    sigma_blur_max = _positive("sigma_blur_max", sigma_blur_max)
    if sigma_blur_max <= sigma_blur_min:
        raise ValueError(f"sigma_blur_max must be > sigma_blur_min, got {sigma_blur_min}, {sigma_blur_max}")
    log_noise = math.log(_positive("noise", noise))
    sched = LogBlurSchedule(sigma_blur_min, sigma_blur_max)
    lam_k = fourier.heat_eigenvalues(shape[1:])

    def log_coefficients(t):
        tau = 0.5 * torch.exp(2 * sched.log_sigma_blur(t))
        return -lam_k * tau, torch.full_like(tau, log_noise)

    return FrequencyProcess(shape, log_coefficients, sched, t_min, name=f"inverse_heat(σ_B={sigma_blur_min:g}…"
                                                                        f"{sigma_blur_max:g}, δ={noise:g})")


SCHEMES = {"sagd": sagd, "blurring": blurring, "inverse_heat": inverse_heat}
