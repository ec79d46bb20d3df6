"""The exact law of any sampler on Gaussian data, no Monte Carlo (docs/method.md §9).

For data ``x_0 ~ N(μ, Fᴴ diag(P) F)`` (per channel) and a spectral ``Σ = Fᴴ diag(w) F``, the
denoiser ``D(x, t) = μ + G_t (x - α_t μ)``, ``G_t = Fᴴ diag(α_t P / (α_t² P + σ_t² w)) F``, is
affine and diagonal in Fourier, so a sampler's output is affine in its white sources: the prior
draw and each injected noise draw. ``sample_law`` runs ``diffusion.sample`` itself on a *linear
Gaussian state*, a batch whose row 0 carries the mean and whose row ``j ≥ 1`` carries the impulse
response to source ``j``; the noise hook hands every injected draw a fresh row. Every sampler,
present or future, is covered without a second copy of its formulas. The law of the samples is
then ``N(m, Fᴴ diag(V) F)`` with ``m`` row 0 and ``V(k) = Σ_j |(F row_j)(k)|²``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..spectral import SpectralCovariance, power_spectrum
from .process import VPProcess
from .samplers import check_method, sample


class GaussianData:
    """Data ``N(mean, Fᴴ diag(power) F)``: ``power`` ``P(k) > 0`` and ``mean`` of shape ``(C, *spatial)``.

    ``from_images`` measures both from a data set: the mean image and the mean power spectrum
    about it (``spectral.power_spectrum``), the Gaussian with the data's second-order statistics.
    """

    def __init__(self, power: torch.Tensor, mean: torch.Tensor | None = None):
        power = torch.as_tensor(power).detach().to(torch.float64)
        if power.dim() < 2 or not torch.isfinite(power).all() or not (power > 0).all():
            raise ValueError(f"power must be a finite, positive tensor (C, *spatial), got shape {tuple(power.shape)}")
        mean = torch.zeros_like(power) if mean is None else torch.as_tensor(mean).detach().to(torch.float64)
        if mean.shape != power.shape:
            raise ValueError(f"mean must have the shape of power {tuple(power.shape)}, got {tuple(mean.shape)}")
        self.power, self.mean = power, mean

    @classmethod
    def from_images(cls, images: torch.Tensor, chunk: int = 4096) -> "GaussianData":
        """The Gaussian with the mean and power spectrum of ``images`` ``(N, C, *spatial)`` (``chunk`` at a time)."""
        images = torch.as_tensor(images)
        parts = range(0, len(images), chunk)
        mean = sum(images[i:i + chunk].to(torch.float64).sum(0) for i in parts) / len(images)
        power = sum(len(images[i:i + chunk]) * power_spectrum(images[i:i + chunk] - mean) for i in parts)
        return cls(power / len(images), mean)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.power.shape)

    def gain(self, proc: VPProcess, t: torch.Tensor) -> tuple[float, SpectralCovariance]:
        """``α_t`` and the operator ``G_t = Fᴴ diag(α_t P / (α_t² P + σ_t² w)) F`` at the time ``t[0]``."""
        tt = t.flatten()[0].to(torch.float64)
        a, s = proc.alpha(tt).item(), proc.sigma(tt).item()
        return a, SpectralCovariance(a * self.power / (a**2 * self.power + s**2 * proc.cov.weights), normalize=False)

    def denoiser(self, proc: VPProcess):
        """The exact ``D(x, t) = μ + G_t (x - α_t μ)`` for ``x`` ``(B, C, *spatial)`` (all ``t`` equal)."""

        def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            a, g = self.gain(proc, t)
            mu = self.mean.to(x)
            return mu + g.apply(x - a * mu)

        return denoise


@dataclass
class SampleLaw:
    """The law ``N(mean, Fᴴ diag(power) F)`` of a sampler's output; ``nfe`` denoiser calls made it."""

    mean: torch.Tensor  # (C, *spatial), float64
    power: torch.Tensor  # (C, *spatial): the variance of each Fourier coefficient, about ``mean``
    nfe: int


class _AffineDenoiser:
    """The exact denoiser on a linear Gaussian state: ``G_t`` on every row, the offset on row 0 only;
    with ``eps_error > 0`` each call also takes a fresh source, the error ``-(σ_t/α_t) δ Σ^{1/2} e`` of ``D``."""

    def __init__(self, data: GaussianData, proc: VPProcess, eps_error: float, noise):
        self.data, self.proc, self.eps_error, self.noise, self.calls = data, proc, eps_error, noise, 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        a, g = self.data.gain(self.proc, t)
        offset = torch.zeros_like(x)
        offset[0] = self.data.mean
        out = offset + g.apply(x - a * offset)
        if self.eps_error > 0:
            s = self.proc.sigma(t.flatten()[0].to(torch.float64)).item()
            out = out - (s / a) * self.eps_error * self.proc.cov.sqrt(self.noise(x))
        return out


def _run(shape: tuple[int, ...], start, make_denoiser, run_sampler, draws: int):
    """Row-stacked output ``(2 + draws, C, *spatial)``, denoiser calls, and the injected draws counted.

    ``start(state, impulse)`` writes the prior's mean into row 0 and its response to a white ``impulse``
    (``F impulse = 1``) into row 1; ``make_denoiser(noise)`` gives the affine denoiser (with a ``calls``
    counter); ``run_sampler(denoiser, state, noise)`` runs the sampler from ``x_T = state``.
    """
    impulse = torch.zeros(shape, dtype=torch.float64)
    impulse[(slice(None),) + (0,) * (impulse.dim() - 1)] = math.sqrt(math.prod(shape[1:]))  # F impulse = 1
    state = torch.zeros((2 + draws, *shape), dtype=torch.float64)
    start(state, impulse)
    count = 0

    def noise(like):
        nonlocal count
        z = torch.zeros_like(like)
        if count < draws:
            z[2 + count] = impulse
        count += 1
        return z

    denoiser = make_denoiser(noise)
    out = run_sampler(denoiser, state, noise)
    return out, denoiser.calls, count


def law_of(shape: tuple[int, ...], start, make_denoiser, run_sampler) -> SampleLaw:
    """The law of a sampler run on a linear Gaussian state (``_run``'s arguments): one pass, or two when the
    sampler injects noise (the first counts the draws)."""
    out, calls, draws = _run(shape, start, make_denoiser, run_sampler, 0)
    if draws:
        out, calls, _ = _run(shape, start, make_denoiser, run_sampler, draws)
    rows = out[1:]
    return SampleLaw(out[0], len(rows) * power_spectrum(rows), calls)


def sample_law(data: GaussianData, proc: VPProcess, method: str, steps: int = 50, t_grid=None,
               eta: float = 0.0, eps_error: float = 0.0) -> SampleLaw:
    """The exact law of ``diffusion.sample(D, proc, ·, method, steps, eta, t_grid=t_grid)`` for ``data``'s ``D``.

    ``eps_error``: a model of a trained network, whose ε-prediction is off by independent white
    noise of this standard deviation at every call; its effect on ``D``, ``(σ_t/α_t) Σ^{1/2} e``, is
    largest at high noise, where samplers that extrapolate through close points amplify it.
    Needs ``proc.noise == "exact"`` (the per-draw normalisation is not Gaussian). Milliseconds:
    one pass for a deterministic sampler, two with injected noise (the first counts the draws).
    """
    if not (isinstance(eps_error, (int, float)) and eps_error >= 0):
        raise ValueError(f"eps_error must be a number >= 0, got {eps_error!r}")
    check_method(method)
    if proc.noise != "exact":
        raise ValueError(f"the exact law needs proc.noise='exact', got {proc.noise!r}")
    if data.shape != proc.shape:
        raise ValueError(f"data has shape {data.shape}, the process {proc.shape}")

    def start(state, impulse):
        state[1] = proc.sigma(torch.tensor(1.0, dtype=torch.float64)).item() * proc.cov.sqrt(impulse)

    def run_sampler(denoiser, state, noise):
        return sample(denoiser, proc, len(state), method=method, steps=steps, eta=eta, x_T=state, t_grid=t_grid,
                      noise=noise)

    return law_of(proc.shape, start, lambda noise: _AffineDenoiser(data, proc, eps_error, noise), run_sampler)


def _support(proc: VPProcess, support: torch.Tensor | None) -> torch.Tensor:
    return proc.cov.support if support is None else support


def kl(law: SampleLaw, data: GaussianData, support: torch.Tensor | None = None) -> float:
    """``KL(data ‖ samples)`` in nats over the frequencies in ``support`` (bool ``(C, *spatial)``).

    ``½ Σ_k [P/V - 1 - log(P/V) + |μ̂ - m̂|²/V]``: the extra nats per image a model with the
    sampler's law spends on the data. Pass ``proc.cov.support`` when ``Σ`` stops a band: there the
    samples keep no variance and the divergence is infinite.
    """
    keep = torch.ones(data.shape, dtype=torch.bool) if support is None else support
    p, v = data.power[keep], law.power[keep]
    shift = power_spectrum((data.mean - law.mean).unsqueeze(0))[keep]
    ratio = p / v
    return 0.5 * (ratio - 1 - torch.log(ratio) + shift / v).sum().item()


def log_spectral_error(law: SampleLaw, data: GaussianData, support: torch.Tensor | None = None) -> float:
    """Mean over ``support`` of ``|log(E|x̂ - μ̂|² / P)|``, the samples' power about the data mean.

    The noise-free value of what a Monte Carlo check measures as ``mean |log(P_samples / P_data)|``.
    """
    keep = torch.ones(data.shape, dtype=torch.bool) if support is None else support
    second = law.power + power_spectrum((law.mean - data.mean).unsqueeze(0))
    return (second[keep] / data.power[keep]).log().abs().mean().item()


def expected_monte_carlo_error(law: SampleLaw, data: GaussianData, n: int,
                               support: torch.Tensor | None = None) -> float:
    """The expected value of that Monte Carlo error with ``n`` samples, to first order in ``1/√n``.

    Per frequency the logarithm of an ``n``-sample power estimate is about normal, with mean the
    exact log-ratio ``b`` and standard deviation ``s = √(ν/n)`` (``ν = 2`` on self-conjugate
    frequencies, 1 elsewhere); ``E|b + s Z| = s √(2/π) e^{-b²/2s²} + b (1 - 2Φ(-b/s))``. With an
    exact law (``b = 0``) this is the sampling-noise floor, ``≈ √(2/(π n))``.
    """
    keep = torch.ones(data.shape, dtype=torch.bool) if support is None else support
    second = law.power + power_spectrum((law.mean - data.mean).unsqueeze(0))
    b = (second / data.power).log()
    ndim = data.power.dim() - 1
    self_conjugate = torch.ones(data.shape, dtype=torch.float64)
    for axis in range(1, ndim + 1):
        size = data.shape[axis]
        k = torch.arange(size)
        on = ((2 * k) % size == 0).to(torch.float64).view(*([1] * axis), size, *([1] * (ndim - axis)))
        self_conjugate = self_conjugate * on
    s = torch.sqrt((1 + self_conjugate) / n)
    normal = torch.distributions.Normal(0.0, 1.0)
    folded = s * math.sqrt(2 / math.pi) * torch.exp(-0.5 * (b / s) ** 2) + b * (1 - 2 * normal.cdf(-b / s))
    return folded[keep].mean().item()


def evaluate(data: GaussianData, proc: VPProcess, method: str, steps: int = 50, t_grid=None) -> dict:
    """``{"kl", "kl_per_dim", "log_spectral_error", "nfe"}`` of one sampler and grid, over ``Σ``'s support."""
    law = sample_law(data, proc, method, steps, t_grid)
    keep = proc.cov.support
    value = kl(law, data, keep)
    return {"kl": value, "kl_per_dim": value / int(keep.sum()), "log_spectral_error":
            log_spectral_error(law, data, keep), "nfe": law.nfe}


__all__ = ["GaussianData", "SampleLaw", "evaluate", "expected_monte_carlo_error", "kl",
           "log_spectral_error", "sample_law"]
