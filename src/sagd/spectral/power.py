"""The mean power spectrum of a batch of samples, on the full frequency grid."""

from __future__ import annotations

import torch


def power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``E|x̂(k)|²`` with the orthonormal DFT over the spatial axes: ``(N, C, *spatial) -> (C, *spatial)``, float64.

    White noise has power 1 at every ``k``; draws of a ``SpectralCovariance`` have power ``weights``.
    """
    if x.dim() < 3:
        raise ValueError(f"x must be (N, C, *spatial), got shape {tuple(x.shape)}")
    dims = tuple(range(2, x.dim()))
    return torch.fft.fftn(x.to(torch.float64), dim=dims, norm="ortho").abs().pow(2).mean(0)
