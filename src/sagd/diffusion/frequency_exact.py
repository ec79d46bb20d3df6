"""The exact law of every frequency sampler on Gaussian data (docs/method.md §9, §11).

For data ``x_0 ~ N(μ, Fᴴ diag(P) F)`` and a ``FrequencyProcess``, ``p_t = N(Fᴴ a_t F μ, Fᴴ diag(a_t² P + s_t²) F)``
and the exact denoiser ``D(x, t) = μ + Fᴴ diag(G_t) F (x - Fᴴ a_t F μ)``, ``G_t = a_t P / (a_t² P + s_t²)`` (``1/a_t``
off the support) is affine and diagonal in Fourier. As in ``exact``, the sampler runs on a linear Gaussian
state (row 0 the mean, row ``j ≥ 1`` the response to the prior draw and to each injected draw), so the
law of its samples, ``N(m, Fᴴ diag(V) F)``, comes from the sampler's own code, no second copy of it.
"""

from __future__ import annotations

import torch

from ..spectral import fourier
from .exact import GaussianData, SampleLaw, kl, law_of, log_spectral_error
from .frequency import FrequencyProcess
from .frequency_samplers import METHODS, sample
from .samplers import check_method


def gain(data: GaussianData, proc: FrequencyProcess, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a_t, G_t)`` at the time ``t.flatten()[0]``, each ``(C, *spatial)`` float64."""
    a, s = proc.coefficients(torch.as_tensor(t).flatten()[0])
    p = data.power
    return a, torch.where(s > 0, a * p / (a**2 * p + s**2), 1 / a)


def marginal(data: GaussianData, proc: FrequencyProcess, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, power)`` of ``p_t``: ``Fᴴ a_t F μ`` and ``a_t² P + s_t²``, each ``(C, *spatial)`` float64."""
    a, s = proc.coefficients(torch.tensor(float(t), dtype=torch.float64))
    return fourier.multiply(data.mean, a, proc.ndim), a**2 * data.power + s**2


def with_exact_prior(data: GaussianData, proc: FrequencyProcess) -> FrequencyProcess:
    """``proc`` starting from ``p_1`` itself, the terminal law of the data (what inverse heat needs)."""
    return proc.with_prior(*marginal(data, proc, 1.0))


def denoiser(data: GaussianData, proc: FrequencyProcess):
    """The exact ``D(x, t)`` for ``x`` ``(B, C, *spatial)`` (all ``t`` equal)."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, g = gain(data, proc, t)
        mu = data.mean.to(x)
        return mu + proc.multiply(x - proc.multiply(mu, a), g)

    return denoise


class _AffineDenoiser:
    """The exact denoiser on a linear Gaussian state: ``G_t`` on every row, the offset on row 0 only."""

    def __init__(self, data: GaussianData, proc: FrequencyProcess):
        self.data, self.proc, self.calls = data, proc, 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        a, g = gain(self.data, self.proc, t)
        offset = torch.zeros_like(x)
        offset[0] = self.data.mean
        return offset + self.proc.multiply(x - self.proc.multiply(offset, a), g)


def sample_law(data: GaussianData, proc: FrequencyProcess, method: str, steps: int = 50, t_grid=None,
               eta: float = 0.0) -> SampleLaw:
    """The exact law of ``frequency_samplers.sample(D, proc, ·, method, steps, eta, t_grid=t_grid)`` for ``data``'s
    ``D``, started from ``proc``'s prior (``with_exact_prior`` for ``p_1`` itself)."""
    check_method(method, METHODS)
    if not isinstance(proc, FrequencyProcess):
        raise ValueError(f"proc must be a FrequencyProcess, got {type(proc).__name__}")
    if data.shape != proc.shape:
        raise ValueError(f"data has shape {data.shape}, the process {proc.shape}")
    mean, power = proc.prior()

    def start(state, impulse):
        state[0] = mean
        state[1] = proc.multiply(impulse, power.sqrt())

    def run_sampler(d, state, noise):
        return sample(d, proc, len(state), method=method, steps=steps, eta=eta, x_T=state, t_grid=t_grid,
                      noise=noise)

    return law_of(proc.shape, start, lambda noise: _AffineDenoiser(data, proc), run_sampler)


def evaluate(data: GaussianData, proc: FrequencyProcess, method: str, steps: int = 50, t_grid=None) -> dict:
    """``{"kl", "kl_per_dim", "log_spectral_error", "nfe"}`` of one sampler and grid, over the process's support."""
    law = sample_law(data, proc, method, steps, t_grid)
    keep = proc.support
    value = kl(law, data, keep)
    return {"kl": value, "kl_per_dim": value / int(keep.sum()), "log_spectral_error":
            log_spectral_error(law, data, keep), "nfe": law.nfe}
