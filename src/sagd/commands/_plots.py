"""Helpers shared by the plotting commands: radial averages and power spectra (matplotlib, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..spectral import radial_frequency  # noqa: E402


def power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """Mean ``|F x|²`` (orthonormal DFT) over images and channels: ``(N, C, H, W) -> (H, W)``, float64."""
    return torch.fft.fft2(images.to(torch.float64), norm="ortho").abs().pow(2).mean((0, 1))


def radial_average(values: torch.Tensor, bins: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``values`` ``(H, W)`` on the full FFT grid over rings of ``|k|``.

    Returns ring centres and means (cycles/pixel), empty rings dropped; ``bins`` defaults to ``max(H, W) // 2``.
    """
    r = radial_frequency(values.shape).flatten()
    bins = bins or max(values.shape) // 2
    edges = torch.linspace(0, float(r.max()) + 1e-9, bins + 1, dtype=torch.float64)
    which = torch.bucketize(r, edges[1:-1])
    total = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, values.flatten().to(torch.float64))
    count = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, torch.ones_like(r))
    centre = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, r)
    keep = count > 0
    return centre[keep] / count[keep], total[keep] / count[keep]


def figure(ncols: int = 1, width: float = 4.5, height: float = 3.8):
    return plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, layout="constrained")


def save(fig, path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
