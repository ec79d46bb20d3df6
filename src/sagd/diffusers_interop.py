"""SAGD inside a stock diffusers loop: colored noise where a scheduler takes noise.

A diffusers pipeline meets the forward noise in three places, and SAGD changes each by one call:

* training: ``noisy, noise = add_noise(scheduler, cov, x0, timesteps)`` (the target is the colored
  ``noise``: our ``colored_eps`` parametrisation, the paper's);
* sampling start: ``latents = initial_latents(scheduler, cov, n)``, i.e. ``Σ^{1/2} z``;
* stochastic steps: ``step(scheduler, cov, model_output, t, latents)`` hands colored
  ``variance_noise`` to schedulers that accept it (``DDIMScheduler`` with ``eta > 0``,
  ``DPMSolverMultistepScheduler``'s SDE variants).

Deterministic ``DDIMScheduler`` and ``DPMSolverMultistepScheduler`` are linear in the latent and
the predicted noise, so with these calls they sample SAGD exactly (tested against the Gaussian
oracle). ``DDPMScheduler.step`` draws its own white noise and cannot: use ``DDIMScheduler`` with
``eta=1`` for ancestral sampling.
"""

from __future__ import annotations

import inspect

import torch

from .spectral import SpectralCovariance


def colored_noise(cov: SpectralCovariance, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``Σ^{1/2} z`` with ``z`` white, shaped (and typed, placed) like ``like`` ``(B, C, *spatial)``."""
    z = torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return cov.sqrt(z)


def add_noise(scheduler, cov: SpectralCovariance, x0: torch.Tensor, timesteps: torch.Tensor,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``scheduler.add_noise`` with colored noise; returns ``(noisy, noise)``, both shaped like ``x0``."""
    noise = colored_noise(cov, x0, generator)
    return scheduler.add_noise(x0, noise, timesteps), noise


def initial_latents(scheduler, cov: SpectralCovariance, n: int, generator: torch.Generator | None = None,
                    device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The colored starting latents ``init_noise_sigma · Σ^{1/2} z``, shape ``(n, C, *spatial)``."""
    return scheduler.init_noise_sigma * cov.sample(n, generator=generator, device=device, dtype=dtype)


def step(scheduler, cov: SpectralCovariance, model_output: torch.Tensor, timestep, sample: torch.Tensor,
         generator: torch.Generator | None = None, **kwargs) -> torch.Tensor:
    """One ``scheduler.step`` whose injected noise (if any) is colored; returns the previous sample."""
    if "variance_noise" not in inspect.signature(scheduler.step).parameters:
        raise ValueError(
            f"scheduler {type(scheduler).__name__} injects white noise and takes no variance_noise; "
            "use DDIMScheduler (eta=1 for ancestral sampling) or DPMSolverMultistepScheduler"
        )
    noise = colored_noise(cov, sample, generator)
    return scheduler.step(model_output, timestep, sample, variance_noise=noise, **kwargs).prev_sample
