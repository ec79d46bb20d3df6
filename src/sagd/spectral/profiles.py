"""Spectral profiles (docs/method.md §3): each returns a normalised ``SpectralCovariance``.

Compose with ``*`` (weights multiply, then renormalise to mean 1 per channel). ``shape`` is the
sample shape ``(C, *spatial)``; radial profiles use ``|k|`` in cycles per sample unless
``unit="nyquist"``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .covariance import SpectralCovariance
from .power import power_spectrum
from .grid import UNITS, axis_frequencies, check_shape, frequency_bin, radial_frequency


def _per_channel(shape: tuple[int, ...], w: torch.Tensor) -> torch.Tensor:
    return w.expand(shape[0], *shape[1:]).clone()


def _check_number(name: str, value, low=None, high=None, low_open=False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def isotropic(shape: Sequence[int]) -> SpectralCovariance:
    """``w ≡ 1``: standard (white-noise) diffusion."""
    shape = check_shape(shape)
    return SpectralCovariance(torch.ones(shape, dtype=torch.float64))


def from_weights(weights, normalize: bool = True) -> SpectralCovariance:
    """A covariance from explicit weights of shape ``(C, *spatial)`` on the full FFT grid."""
    return SpectralCovariance(torch.as_tensor(weights), normalize=normalize)


def power_law(shape: Sequence[int], alpha: float, k0: float | None = None) -> SpectralCovariance:
    """The paper's power law: power ``(|k| + k0)^(2α)``, amplitude ``(|k| + k0)^α``.

    ``α < 0`` puts more noise at low frequencies, ``α > 0`` at high ones (the paper's sign).
    ``k0`` defaults to one frequency bin (``1 / max(spatial)``), which keeps the DC weight
    in line with its neighbours; ``k0=1e-10`` is the paper's exact form, whose DC weight is
    far from every other bin (docs/method.md §10, "the DC quirk").
    """
    shape = check_shape(shape)
    alpha = _check_number("alpha", alpha)
    k0 = frequency_bin(shape[1:]) if k0 is None else _check_number("k0", k0, low=0.0, low_open=True)
    r = radial_frequency(shape[1:])
    return SpectralCovariance(_per_channel(shape, (r + k0) ** (2 * alpha)))


def _band_mask(r: torch.Tensor, low: float, high: float, edge: float) -> torch.Tensor:
    """1 on ``low <= r <= high``; with ``edge > 0`` a raised-cosine fall to 0 over ``edge`` outside."""
    inside = ((r >= low) & (r <= high)).to(r.dtype)
    if edge == 0:
        return inside
    dist = torch.clamp(torch.maximum(low - r, r - high), min=0.0)
    taper = 0.5 * (1 + torch.cos(math.pi * torch.clamp(dist / edge, max=1.0)))
    return torch.maximum(inside, taper)


def _band_args(shape, low, high, edge, floor, unit):
    shape = check_shape(shape)
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    low = _check_number("low", low, low=0.0)
    high = _check_number("high", high, low=0.0)
    if high <= low:
        raise ValueError(f"high must be > low, got low={low}, high={high}")
    edge = _check_number("edge", edge, low=0.0)
    floor = _check_number("floor", floor, low=0.0, high=1.0)
    return shape, low, high, edge, floor, radial_frequency(shape[1:], unit)


def band_pass(
    shape: Sequence[int], low: float, high: float, edge: float = 0.0, floor: float = 0.0, unit: str = "cycles"
) -> SpectralCovariance:
    """Noise only on ``low <= |k| <= high`` (``floor`` elsewhere), optional raised-cosine ``edge``."""
    shape, low, high, edge, floor, r = _band_args(shape, low, high, edge, floor, unit)
    w = floor + (1 - floor) * _band_mask(r, low, high, edge)
    if not (w > 0).any():
        raise ValueError(f"band_pass low={low}, high={high} ({unit}) contains no frequency of a {shape[1:]} grid")
    return SpectralCovariance(_per_channel(shape, w))


def band_stop(
    shape: Sequence[int], low: float, high: float, edge: float = 0.0, floor: float = 0.0, unit: str = "cycles"
) -> SpectralCovariance:
    """No noise on ``low <= |k| <= high`` (``floor`` there), optional raised-cosine ``edge``.

    With ``floor=0`` the band is outside the support: selective omission (docs/method.md §7).
    """
    shape, low, high, edge, floor, r = _band_args(shape, low, high, edge, floor, unit)
    w = 1 - (1 - floor) * _band_mask(r, low, high, edge)
    if not (w > 0).any():
        raise ValueError(f"band_stop low={low}, high={high} ({unit}) removes every frequency of a {shape[1:]} grid")
    return SpectralCovariance(_per_channel(shape, w))


def _normalised_band(name: str, mask: torch.Tensor) -> torch.Tensor:
    """The expected per-frequency variance of white noise restricted to ``mask`` (spatial shape,
    {0, 1}) and divided by its own spatial std about its mean, the paper's per-draw normalisation.

    With ``m`` non-DC frequencies in the band and ``N`` spatial positions the squared std is
    ``(1/N) Σ_{k≠0} |ê_k|²``, so each non-DC frequency gets exactly ``N / m`` (the ratios are
    Dirichlet) and the DC bin, outside the divisor, ``N · E[1 / Σ_{k≠0} |ê_k|²] = N / (m - 2)``.
    """
    dc = (0,) * mask.dim()
    m = int(mask.sum().item() - mask[dc].item())
    if m == 0:
        raise ValueError(f"{name} holds no frequency but DC: its noise has zero std about its mean")
    out = mask * (mask.numel() / m)
    if mask[dc] > 0:
        if m <= 2:
            raise ValueError(f"{name} holds DC and only {m} other frequencies: the paper's normalised band "
                             f"has infinite DC variance unless a band with DC holds at least 3 others")
        out[dc] = mask.numel() / (m - 2)
    return out


def _mixture(shape: tuple[int, ...], bands, normalize: bool) -> SpectralCovariance:
    """``Σ_b γ_b ε_b / std(ε_b)`` with independent band-limited white ``ε_b`` (``bands``: ``(name,
    mask, γ)``): the weights are its exact expected spectrum, the components its draw procedure."""
    w = torch.zeros(shape[1:], dtype=torch.float64)
    components = []
    for name, mask, gamma in bands:
        if gamma > 0:
            w = w + gamma**2 * _normalised_band(name, mask)
            components.append((_per_channel(shape, mask), torch.full((shape[0],), gamma, dtype=torch.float64)))
    if not components:
        raise ValueError("a two-band mixture with both gammas 0 removes every frequency")
    return SpectralCovariance(_per_channel(shape, w), normalize=normalize, components=components)


def two_band(
    shape: Sequence[int],
    low_band: tuple[float, float],
    high_band: tuple[float, float],
    gamma_low: float = 0.5,
    gamma_high: float = 0.5,
    unit: str = "nyquist",
    normalize: bool = True,
) -> SpectralCovariance:
    """The paper's two-band mixture ``γ_l ε[band_l] + γ_h ε[band_h]``, each band's noise divided
    by its own std, with its literal closed bands ``1{a <= |k| <= b}``.

    The weights are the mixture's exact expected spectrum (see ``_normalised_band``): ``γ² N / m``
    on a band's ``m`` non-DC frequencies, more on DC. ``normalize=False`` keeps the paper's noise
    energy (about ``γ_l² + γ_h²``, 0.5 for 0.5/0.5: an energy confound); the default renormalises
    to mean 1. ``VPProcess(noise="per_draw")`` draws it as the paper does, band by band.
    ``unit`` defaults to ``"nyquist"``, the reading the paper's examples need (docs/method.md §10). The
    closed bands miss the corners beyond the Nyquist radius and share their edges with a closed
    corruption band: ``omission`` is the exact complement of ``corrupt_band``'s band.
    """
    shape = check_shape(shape)
    gamma_low = _check_number("gamma_low", gamma_low, low=0.0)
    gamma_high = _check_number("gamma_high", gamma_high, low=0.0)
    bands = []
    for name, band, gamma in (("low_band", low_band, gamma_low), ("high_band", high_band, gamma_high)):
        try:
            lo, hi = band
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a pair (low, high), got {band!r}") from None
        _, lo, hi, _, _, r = _band_args(shape, lo, hi, 0.0, 0.0, unit)
        mask = _band_mask(r, lo, hi, 0.0)
        if mask.sum() == 0:
            near = ", ".join(f"{float(v):.4g}" for v in (r[r < lo].max() if (r < lo).any() else None,
                                                          r[r > hi].min() if (r > hi).any() else None) if v is not None)
            raise ValueError(f"{name}={band} ({unit}) contains no frequency of a {shape[1:]} grid "
                             f"(the nearest frequencies are {near})")
        bands.append((f"{name}={band}", mask, gamma))
    return _mixture(shape, bands, normalize)


def omission(
    shape: Sequence[int],
    low: float,
    high: float,
    gamma_low: float = 0.5,
    gamma_high: float = 0.5,
    unit: str = "nyquist",
    normalize: bool = True,
) -> SpectralCovariance:
    """Selective omission of the closed band ``low <= |k| <= high``: the two-band mixture on
    ``|k| < low`` and ``|k| > high`` (corners included), the exact complement of
    ``data.corrupt_band(x, low, high)``. Drawn and weighted as ``two_band``; with ``low = 0`` only
    the high band remains. docs/method.md §7.
    """
    shape = check_shape(shape)
    gamma_low = _check_number("gamma_low", gamma_low, low=0.0)
    gamma_high = _check_number("gamma_high", gamma_high, low=0.0)
    shape, low, high, _, _, r = _band_args(shape, low, high, 0.0, 0.0, unit)
    below, above = (r < low).to(r.dtype), (r > high).to(r.dtype)
    if above.sum() == 0:
        raise ValueError(f"omission high={high} ({unit}) leaves no frequency above it on a {shape[1:]} grid")
    bands = [(f"omission band above high={high}", above, gamma_high)]
    if below.sum() > 0:
        bands.insert(0, (f"omission band below low={low}", below, gamma_low))
    return _mixture(shape, bands, normalize)


def offset(shape: Sequence[int], std: float = 0.1) -> SpectralCovariance:
    """Offset noise: white noise plus ``std · z`` added to every pixel of a channel (one ``z`` per channel).

    In the Fourier basis this is extra variance ``std² · N`` on the DC bin only (``N`` the number
    of spatial positions), the control for the paper's DC quirk. Renormalised to mean 1.
    """
    shape = check_shape(shape)
    std = _check_number("std", std, low=0.0)
    w = torch.ones(shape, dtype=torch.float64)
    w[(slice(None),) + (0,) * (len(shape) - 1)] += std**2 * math.prod(shape[1:])
    return SpectralCovariance(w)


def data_matched(
    data: torch.Tensor, gamma: float = 1.0, per_channel: bool = True, floor: float = 1e-8
) -> SpectralCovariance:
    """Noise shaped like the data: ``w ∝ P_data(k)^γ`` (``γ = 1`` is EqualSNR, Falck et al. 2025).

    Args:
        data: samples of shape ``(N, C, *spatial)``.
        gamma: exponent on the mean power spectrum.
        per_channel: one spectrum per channel; ``False`` averages the channels.
        floor: relative floor on ``P_data`` (fraction of its mean) that keeps full support.
    """
    data = torch.as_tensor(data)
    if data.dim() < 3 or not data.is_floating_point():
        raise ValueError(f"data must be a float tensor (N, C, *spatial), got shape {tuple(data.shape)}")
    if not torch.isfinite(data).all():
        raise ValueError("data must be finite")
    gamma = _check_number("gamma", gamma)
    floor = _check_number("floor", floor, low=0.0)
    dims = tuple(range(2, data.dim()))
    power = power_spectrum(data)
    if not per_channel:
        power = power.mean(0, keepdim=True).expand_as(power)
    power = power + floor * power.flatten(1).mean(1).view(-1, *([1] * len(dims)))
    if (power.flatten(1).max(1).values <= 0).any():
        raise ValueError("data has zero power in a channel; data_matched needs non-constant data or floor > 0")
    return SpectralCovariance(power.pow(gamma).contiguous())


def orientation(
    shape: Sequence[int], angle: float, width: float = 20.0, floor: float = 0.0
) -> SpectralCovariance:
    """Directional noise (beyond the paper): weight by the angle of ``k`` in the last two axes.

    ``w = floor + (1 - floor) · exp(-Δ² / (2 width²))`` with ``Δ`` the angle, in degrees, between
    ``k`` and the direction ``angle`` (0° = the last axis), taken modulo 180° so that
    ``w(k) = w(-k)``. Frequencies with no component in that plane (DC among them) get weight 1.
    """
    shape = check_shape(shape)
    if len(shape) < 3:
        raise ValueError(f"orientation needs at least two spatial axes, got shape {shape}")
    angle = _check_number("angle", angle)
    width = _check_number("width", width, low=0.0, low_open=True)
    floor = _check_number("floor", floor, low=0.0, high=1.0)
    ks = axis_frequencies(shape[1:])
    theta = torch.rad2deg(torch.atan2(ks[-2], ks[-1]))
    delta = torch.remainder(theta - angle + 90.0, 180.0) - 90.0
    w = floor + (1 - floor) * torch.exp(-0.5 * (delta / width) ** 2)
    w = torch.where((ks[-2] == 0) & (ks[-1] == 0), torch.ones_like(w), w)
    if not (w > 0).any():
        raise ValueError("orientation leaves no frequency with positive weight")
    return SpectralCovariance(_per_channel(shape, w))
