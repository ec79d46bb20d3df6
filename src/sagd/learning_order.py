"""Learning order, measured directly: the denoising error of a network split by frequency band.

The paper's claim is that the forward spectrum steers *what the model learns first*. ``Probe``
measures it on a fixed batch ``x0``, fixed noise levels and fixed noise draws, so that successive
calls during training differ only by the network: for each time ``t`` and radial band ``b``,

    error[t, b] = Σ_{n, k ∈ b} |F(D(x_t, t) - x0)|²  /  Σ_{n, k ∈ b} |F x0|²

(1: no better than predicting zero in that band; 0: exact). Its own spectrum changes what is
*learnable* at a given ``t`` (a band drowned in noise stays near 1), so compare a band's error
with its own end-of-training value, not across spectra at one step.
"""

from __future__ import annotations

import torch

from . import diffusion
from .spectral import band_power

TIMES = (0.2, 0.5, 0.8)
EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # Nyquist units; the last band runs into the corners


class Probe:
    """Band-split denoising error of a denoiser on a fixed batch.

    Args:
        proc: the run's forward process, a ``VPProcess`` (its noise mode and spectrum draw the probe's
            noise) or a ``FrequencyProcess`` (blurring, inverse heat): anything with ``q_sample``.
        x0: the fixed clean batch ``(N, C, *spatial)``, e.g. held-out test images.
        times: noise levels ``t``.
        edges: band edges in Nyquist units (``spectral.band_power``).
        seed: the noise draws' seed.
    """

    def __init__(self, proc: diffusion.VPProcess | diffusion.FrequencyProcess, x0: torch.Tensor, times=TIMES,
                 edges=EDGES, seed: int = 0):
        self.times, self.edges = tuple(float(t) for t in times), tuple(float(e) for e in edges)
        g = torch.Generator(x0.device).manual_seed(seed)
        self.x0 = x0
        self.t = [torch.full((len(x0),), t, device=x0.device) for t in self.times]
        self.x_t = [proc.q_sample(x0, t, generator=g) for t in self.t]
        self.proc = proc
        self.reference = band_power(x0, self.edges).sum(0).clamp_min(1e-30)  # (bands,)

    @torch.no_grad()
    def __call__(self, denoiser) -> dict:
        """``{"probe_t": [T], "probe_edges": [B], "probe_error": [T][B]}`` for ``denoiser(x, t) -> D``."""
        error = [(band_power(denoiser(x, t) - self.x0, self.edges).sum(0) / self.reference).tolist()
                 for x, t in zip(self.x_t, self.t)]
        return {"probe_t": list(self.times), "probe_edges": list(self.edges), "probe_error": error}
