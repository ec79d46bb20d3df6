"""The mean power spectrum of a batch of samples, on the full frequency grid."""

from __future__ import annotations

import torch

from .grid import radial_frequency


def power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``E|x̂(k)|²`` with the orthonormal DFT over the spatial axes: ``(N, C, *spatial) -> (C, *spatial)``, float64.

    White noise has power 1 at every ``k``; draws of a ``SpectralCovariance`` have power ``weights``.
    """
    if x.dim() < 3:
        raise ValueError(f"x must be (N, C, *spatial), got shape {tuple(x.shape)}")
    dims = tuple(range(2, x.dim()))
    return torch.fft.fftn(x.to(torch.float64), dim=dims, norm="ortho").abs().pow(2).mean(0)


def band_power(x: torch.Tensor, edges, unit: str = "nyquist") -> torch.Tensor:
    """Energy of each sample in radial bands ``edges[i] <= |k| < edges[i+1]`` (the last band is
    ``|k| >= edges[-1]``, corners included): ``(N, C, *spatial) -> (N, len(edges))``, float64.

    Summed over channels with the orthonormal DFT, so the bands' energies add up to ``‖x‖²``.
    """
    if x.dim() < 3:
        raise ValueError(f"x must be (N, C, *spatial), got shape {tuple(x.shape)}")
    edges = [float(e) for e in edges]
    if not edges or edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must start at 0 and increase, got {edges}")
    dims = tuple(range(2, x.dim()))
    p = torch.fft.fftn(x.to(torch.float64), dim=dims, norm="ortho").abs().pow(2).sum(1)  # (N, *spatial)
    r = radial_frequency(x.shape[2:], unit).to(p.device)
    band = torch.bucketize(r, torch.tensor(edges[1:], dtype=r.dtype, device=r.device), right=True)
    return torch.stack([p[:, band == i].sum(1) for i in range(len(edges))], dim=1)
