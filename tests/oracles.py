"""Closed-form Gaussian oracles (docs/method.md §9): exact denoisers and densities, no training.

Written with ``torch.fft.fftn`` directly, independently of ``SpectralCovariance``'s rfft code.
"""

from __future__ import annotations

import math

import torch

from sagd import spectral


def fft(x):
    return torch.fft.fftn(x, dim=tuple(range(2, x.dim())), norm="ortho")


def ifft(x):
    return torch.fft.ifftn(x, dim=tuple(range(2, x.dim())), norm="ortho").real


def spectrum(x: torch.Tensor) -> torch.Tensor:
    """Mean power per frequency of samples ``(N, C, *spatial)``, shape ``(C, *spatial)``."""
    return fft(x.to(torch.float64)).abs().pow(2).mean(0)


def power_law_power(shape, exponent: float, scale: float = 1.0) -> torch.Tensor:
    """A data power spectrum ``∝ (|k| + k_bin)^exponent`` with mean ``scale``, shape ``shape``."""
    r = spectral.radial_frequency(shape[1:])
    p = (r + 1.0 / max(shape[1:])) ** exponent
    return (scale * p / p.mean()).expand(shape).clone()


class GaussianOracle:
    """Data ``x_0 ~ N(μ, Fᴴ diag(P) F)`` and its exact denoiser under the process ``proc``.

    ``power``: ``P`` on the full grid, shape ``(C, *spatial)``; ``mu``: ``(C, *spatial)``.
    """

    def __init__(self, proc, power: torch.Tensor, mu: torch.Tensor | None = None):
        self.proc, self.power = proc, power.to(torch.float64)
        self.w = proc.cov.weights
        self.mu = torch.zeros(proc.shape, dtype=torch.float64) if mu is None else mu.to(torch.float64)

    def coefficients(self, t: float):
        tt = torch.tensor(t, dtype=torch.float64)
        return self.proc.alpha(tt).item(), self.proc.sigma(tt).item()

    def sample(self, n: int, generator=None) -> torch.Tensor:
        z = torch.randn((n, *self.proc.shape), generator=generator, dtype=torch.float64)
        return self.mu + ifft(self.power.sqrt() * fft(z))

    def denoiser(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``D(x, t) = μ + Fᴴ diag(α P / (α² P + σ² w)) F (x - α μ)``; all ``t`` equal."""
        return self.denoise_at(x, *self.coefficients(float(t.flatten()[0])))

    def denoise_at(self, x: torch.Tensor, a: float, s: float) -> torch.Tensor:
        """The exact denoiser for ``x = a x_0 + s Σ^{1/2} ε``."""
        gain = a * self.power / (a**2 * self.power + s**2 * self.w)
        mu = self.mu.to(x)
        return mu + ifft(gain * fft(x.to(torch.float64) - a * mu)).to(x)

    def log_density(self, x: torch.Tensor, support: torch.Tensor | None = None) -> torch.Tensor:
        """``log N(x; μ, Σ_data)`` per sample, restricted to the frequencies in ``support`` if given."""
        keep = torch.ones_like(self.power, dtype=torch.bool) if support is None else support
        xf = fft(x.to(torch.float64) - self.mu)
        quad = (xf.abs().pow(2) / self.power * keep).flatten(1).sum(1)
        r = int(keep.sum())
        return -0.5 * (quad + r * math.log(2 * math.pi) + torch.log(self.power[keep]).sum())


class MixtureOracle:
    """Data from ``Σ_k π_k N(μ_k, Fᴴ diag(P) F)``: a shared spectral covariance, ``K`` means."""

    def __init__(self, proc, power: torch.Tensor, means: torch.Tensor, weights: torch.Tensor):
        self.proc, self.power = proc, power.to(torch.float64)
        self.w = proc.cov.weights
        self.means, self.pi = means.to(torch.float64), weights.to(torch.float64)

    def sample(self, n, generator=None):
        k = torch.multinomial(self.pi, n, replacement=True, generator=generator)
        z = torch.randn((n, *self.proc.shape), generator=generator, dtype=torch.float64)
        return self.means[k] + ifft(self.power.sqrt() * fft(z)), k

    def denoiser(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = torch.tensor(float(t.flatten()[0]), dtype=torch.float64)
        a, s = self.proc.alpha(tt).item(), self.proc.sigma(tt).item()
        var = a**2 * self.power + s**2 * self.w  # covariance of x_t given the component, per frequency
        xf = fft(x.to(torch.float64))
        mf = fft(self.means)
        diff = xf.unsqueeze(1) - a * mf.unsqueeze(0)  # (B, K, C, *spatial)
        logp = torch.log(self.pi) - 0.5 * (diff.abs().pow(2) / var).flatten(2).sum(-1)
        resp = torch.softmax(logp, dim=1)  # (B, K)
        cond = mf.unsqueeze(0) + (a * self.power / var) * diff  # E[x0 | x_t, k] in Fourier
        post = (resp.reshape(*resp.shape, *([1] * (x.dim() - 1))) * cond).sum(1)
        return torch.fft.ifftn(post, dim=tuple(range(2, x.dim())), norm="ortho").real.to(x)
