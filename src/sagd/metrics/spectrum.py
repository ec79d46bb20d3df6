"""Spectral metrics of image sets: power spectra, RAPS, log-spectral distance, band energy, SNR.

Conventions follow ``sagd.spectral`` (docs/method.md §1): the orthonormal DFT over the spatial axes,
frequencies ``|k|`` in cycles per pixel (Nyquist 0.5, 2-D corner √2/2), or ``unit="nyquist"``
(``|k| / 0.5``). With the orthonormal DFT white noise of variance 1 has power 1 at every
frequency, and ``N(0, Σ)`` samples have expected power ``w(k)`` (``cov.weights``).

Radial bins: frequency ``k`` falls in bin ``b = round(|k| · n)`` with ``n = max(H, W)``, i.e.
integer radii in units of one frequency step; bin ``b`` is reported at radius ``b / n`` cycles
per pixel. Bin 0 is the DC term alone.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..spectral import power_spectrum as spectral_power
from ..spectral import radial_frequency
from ..spectral.grid import UNITS
from ._arrays import as_images


def power_spectrum(images) -> torch.Tensor:
    """Mean power ``E|x̂(k)|²`` over the batch, shape ``(C, H, W)`` on the full grid, float64.

    ``images``: ``(N, C, H, W)``, torch or numpy.
    """
    return spectral_power(as_images(images)).cpu()


def radial_bins(spatial: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin index of every frequency of the grid ``spatial`` (shape ``spatial``, int64) and the bin radii in cycles per pixel."""
    n = max(spatial)
    index = torch.round(radial_frequency(spatial) * n).long()
    return index, torch.arange(int(index.max()) + 1, dtype=torch.float64) / n


def radial_average(field: torch.Tensor, spatial: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Radial average of a full-grid field ``(..., *spatial)`` (e.g. ``cov.weights`` or a power spectrum).

    Returns ``(radii, values)``: radii ``(B,)`` in cycles per pixel and values ``(..., B)`` (float64),
    the mean of ``field`` over the frequencies of each integer-radius bin (see the module docstring).
    """
    field = torch.as_tensor(field, dtype=torch.float64).cpu()
    spatial = tuple(field.shape[-2:]) if spatial is None else tuple(spatial)
    index, radii = radial_bins(spatial)
    flat = field.reshape(*field.shape[: field.dim() - len(spatial)], -1)
    sums = torch.zeros(*flat.shape[:-1], len(radii), dtype=torch.float64).index_add_(-1, index.flatten(), flat)
    counts = torch.bincount(index.flatten(), minlength=len(radii)).to(torch.float64)
    return radii, sums / counts


def raps(images) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum of ``images`` ``(N, C, H, W)``, averaged over images and channels.

    Returns ``(radii, power)``, both ``(B,)`` float64, radii in cycles per pixel.
    """
    return radial_average(power_spectrum(images).mean(0))


def log_spectral_distance(a, b, bands: Sequence[tuple[float, float]] | None = None, unit: str = "cycles"):
    """Log-spectral distance in dB between the RAPS of two image sets ``(N1, C, H, W)``, ``(N2, C, H, W)``.

    ``LSD = sqrt(mean over radial bins of (10 log10(P_a / P_b))²)``; powers are floored at 1e-10
    times their mean so that an emptied band gives a large but finite value.

    Returns a float when ``bands`` is None; otherwise a dict with ``"overall"`` and one entry per
    band ``(low, high)`` (bins with ``low <= radius <= high`` in ``unit``), keyed ``"low-high"``.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    radii, pa = raps(a)
    radii_b, pb = raps(b)
    if radii.shape != radii_b.shape:
        raise ValueError("log_spectral_distance needs two image sets of the same spatial size")
    db = 10 * (torch.log10(pa.clamp_min(1e-10 * pa.mean())) - torch.log10(pb.clamp_min(1e-10 * pb.mean())))
    overall = float(db.pow(2).mean().sqrt())
    if bands is None:
        return overall
    r = radii / 0.5 if unit == "nyquist" else radii
    out = {"overall": overall}
    for low, high in bands:
        inside = (r >= low) & (r <= high)
        if not inside.any():
            raise ValueError(f"band ({low}, {high}) contains no radial bin (bins reach {float(r.max()):.3g} {unit})")
        out[f"{low:g}-{high:g}"] = float(db[inside].pow(2).mean().sqrt())
    return out


def band_energy(images, low: float, high: float, unit: str = "nyquist") -> float:
    """Mean energy per image inside the radial band ``low <= |k| <= high``.

    Energy is ``Σ_k |x̂(k)|²`` over the band's frequencies (full grid, summed over channels), so
    by Parseval the band ``[0, ∞)`` gives ``Σ x²``. ``unit`` defaults to ``"nyquist"``, the
    reading of the paper's omission bands (docs/method.md §10). ``images``: ``(N, C, H, W)``.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high, got low={low}, high={high}")
    p = power_spectrum(images)
    r = radial_frequency(p.shape[-2:], unit)
    return float(p[:, (r >= low) & (r <= high)].sum())


def relative_band_energy(samples, reference, low: float, high: float, unit: str = "nyquist") -> float:
    """``band_energy(samples) / band_energy(reference)`` in the band ``[low, high]``.

    For selective omission (docs/method.md §7): the samples' energy in the corrupted band relative to
    the clean data's (≈ 1: band reproduced; ≈ 0: band empty) or the corrupted data's.
    """
    ref = band_energy(reference, low, high, unit)
    if ref <= 0:
        raise ValueError(f"reference has no energy in the band [{low}, {high}] ({unit})")
    return band_energy(samples, low, high, unit) / ref


def snr_curves(proc, data_power, ts) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged per-frequency SNR ``α_t² P(k) / (σ_t² w(k))`` of the forward process (docs/method.md §4).

    Args:
        proc: a ``VPProcess`` (``proc.alpha``, ``proc.sigma``, ``proc.cov.weights``).
        data_power: ``P(k)`` on the full grid, broadcastable to ``proc.cov.weights`` ``(C, H, W)``,
            e.g. ``power_spectrum(x0)``.
        ts: times, shape ``(T,)``.

    Returns ``(radii, snr)``: radii ``(B,)`` in cycles per pixel and ``snr`` ``(T, B)`` float64, the
    mean over channels and over the supported frequencies (``w > 0``) of each bin; frequencies off
    the support are never noised and a bin with none on the support is ``inf``.
    """
    w = proc.cov.weights
    p = torch.as_tensor(data_power, dtype=torch.float64).cpu().expand_as(w)
    ts = torch.as_tensor(ts, dtype=torch.float64).reshape(-1)
    ratio = (proc.alpha(ts) ** 2 / proc.sigma(ts) ** 2).to(torch.float64).reshape(-1, 1, 1, 1)
    snr = ratio * torch.where(w > 0, p / w.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    radii, snr_sum = radial_average(snr.sum(1), w.shape[-2:])  # bin means of the channel sums
    _, support = radial_average((w > 0).to(torch.float64).sum(0), w.shape[-2:])
    return radii, torch.where(support > 0, snr_sum / support.clamp_min(1e-300), torch.inf)
