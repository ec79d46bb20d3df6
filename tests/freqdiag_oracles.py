"""Closed-form Gaussian oracles for the frequency-diagonal process (docs/method.md §9, §11).

Written with ``torch.fft.fftn`` on the full grid, independently of ``spectral.fourier``'s rfft code; the
coefficients ``a_t(k)``, ``s_t(k)`` come from the process under test (``test_freqdiag_process`` checks them
against the papers' formulas).
"""

from __future__ import annotations

import math

import torch

from oracles import fft, ifft


class FrequencyOracle:
    """Data ``x_0 ~ N(μ, Fᴴ diag(P) F)`` under ``x̂_t = a_t x̂_0 + s_t ε̂``: its exact denoiser, marginals and density."""

    def __init__(self, proc, power: torch.Tensor, mu: torch.Tensor | None = None):
        self.proc, self.power = proc, power.to(torch.float64)
        self.mu = torch.zeros(proc.shape, dtype=torch.float64) if mu is None else mu.to(torch.float64)

    def coefficients(self, t: float):
        return self.proc.coefficients(torch.tensor(float(t), dtype=torch.float64))

    def sample(self, n: int, generator=None) -> torch.Tensor:
        z = torch.randn((n, *self.proc.shape), generator=generator, dtype=torch.float64)
        return self.mu + ifft(self.power.sqrt() * fft(z))

    def marginal(self, t: float):
        """``(mean, power)`` of ``p_t``: ``Fᴴ a F μ`` and ``a² P + s²``."""
        a, s = self.coefficients(t)
        return ifft(a * fft(self.mu.unsqueeze(0)))[0], a**2 * self.power + s**2

    def prior_sample(self, n: int, generator=None) -> torch.Tensor:
        """Draws of ``p_1`` itself."""
        mean, power = self.marginal(1.0)
        z = torch.randn((n, *self.proc.shape), generator=generator, dtype=torch.float64)
        return mean + ifft(power.sqrt() * fft(z))

    def denoiser(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``D(x, t) = μ + Fᴴ diag(a P / (a² P + s²)) F (x - Fᴴ a F μ)``; all ``t`` equal."""
        a, s = self.coefficients(float(t.flatten()[0]))
        gain = a * self.power / (a**2 * self.power + s**2)
        mean_t = self.marginal(float(t.flatten()[0]))[0]
        return (self.mu + ifft(gain * fft(x.to(torch.float64) - mean_t))).to(x)

    def log_density(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """``log p_t(x)`` per sample ``(B,)``."""
        mean, power = self.marginal(t)
        quad = (fft(x.to(torch.float64) - mean).abs().pow(2) / power).flatten(1).sum(1)
        return -0.5 * (quad + power.numel() * math.log(2 * math.pi) + torch.log(power).sum())
