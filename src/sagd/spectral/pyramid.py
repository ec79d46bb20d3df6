"""Pyramid (multi-resolution) noise as a spectral profile: its exact expected spectrum (docs/method.md §3, §11).

The recipe (Whitaker 2023; "multi-resolution noise" in several diffusion code bases) sums white fields
drawn on coarser grids and upsampled: ``n = Σ_{i<L} d^i · up_{2^i}(z_i)``, ``z_i`` white on the grid
divided by ``r = 2^i`` along every spatial axis, ``up_r`` nearest-neighbour upsampling (each coarse value
fills an ``r × … × r`` block). One upsampled level has, at frequency ``k`` (cycles per sample ``f`` per axis),
the expected power ``Π_axes F_r(f)`` with the Fejér kernel ``F_r(f) = sin²(π r f) / (r sin²(π f))``,
``F_r(0) = r``, whose mean over the grid is 1; so the pyramid's expected spectrum is
``Σ_i d^{2i} Π_axes F_{2^i}(f)``, the weights of ``pyramid``.

**It is not stationary.** A block field's covariance depends on where the block edges fall: in Fourier it
couples ``k`` with its aliases ``k + m N / r`` (``cyclostationary`` with period ``r``), so no diagonal
``Σ`` is its covariance. ``pyramid`` is the stationary Gaussian with the same expected spectrum — the
law of the recipe averaged over random shifts of the block grid — and ``pyramid_noise`` draws the
recipe itself for comparison. The usual recipe also draws a random factor per level and bilinear
upsampling; those are not reproduced.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .covariance import SpectralCovariance
from .grid import axis_frequencies, check_shape


def _levels(shape: tuple[int, ...], levels) -> int:
    spatial = shape[1:]
    most = min((n & -n).bit_length() for n in spatial)  # 1 + the largest i with 2^i dividing every size
    if levels is None:
        return most
    try:
        value = float(levels)
    except (TypeError, ValueError):
        raise ValueError(f"levels must be a whole number >= 1, got {levels!r}") from None
    if not value.is_integer() or value < 1 or value > most:
        raise ValueError(f"levels must be a whole number in [1, {most}] for spatial sizes {spatial} (level i "
                         f"upsamples by 2^i, which must divide every size), got {levels!r}")
    return int(value)


def _discount(discount) -> float:
    try:
        value = float(discount)
    except (TypeError, ValueError):
        raise ValueError(f"discount must be a number >= 0, got {discount!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"discount must be a finite number >= 0, got {discount!r}")
    return value


def fejer(f: torch.Tensor, r: int) -> torch.Tensor:
    """``F_r(f) = sin²(π r f) / (r sin²(π f))`` (``r`` where ``sin(π f) = 0``): the expected power of white noise
    upsampled by ``r`` by nearest neighbour along one axis, at frequency ``f`` in cycles per sample."""
    s = torch.sin(torch.pi * f)
    zero = s.abs() < 1e-12
    return torch.where(zero, float(r), torch.sin(torch.pi * r * f) ** 2 / (r * torch.where(zero, 1.0, s) ** 2))


def pyramid(shape: Sequence[int], discount: float = 0.8, levels: int | None = None) -> SpectralCovariance:
    """The expected spectrum of pyramid noise ``Σ_{i<levels} discount^i up_{2^i}(z_i)``, normalised to mean 1.

    ``levels`` defaults to every level whose factor ``2^i`` divides all spatial sizes (3 at 28×28, 6 at
    32×32, where the last level is one value per image: offset noise). ``discount = 0`` or ``levels = 1``
    is white noise. Its expected power is red: ``Σ_i discount^{2i} 2^{i·ndim}`` at DC.
    """
    shape = check_shape(shape)
    levels, discount = _levels(shape, levels), _discount(discount)
    freqs = axis_frequencies(shape[1:])
    w = torch.zeros(shape[1:], dtype=torch.float64)
    for i in range(levels):
        w = w + discount ** (2 * i) * math.prod(fejer(f, 2**i) for f in freqs)
    return SpectralCovariance(w.expand(shape).clone())


def pyramid_noise(n: int, shape: Sequence[int], discount: float = 0.8, levels: int | None = None,
                  generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` draws of the recipe itself, nearest-neighbour upsampled (not stationary), shape ``(n, C, *spatial)``,
    divided by ``√(Σ_i discount^{2i})`` so that each pixel has unit variance, as ``pyramid``'s mean-1 weights."""
    shape = check_shape(shape)
    levels, discount = _levels(shape, levels), _discount(discount)
    out = torch.zeros((int(n), *shape), dtype=dtype)
    for i in range(levels):
        r = 2**i
        z = torch.randn((int(n), shape[0], *(s // r for s in shape[1:])), generator=generator, dtype=dtype)
        for axis in range(2, z.dim()):
            z = z.repeat_interleave(r, dim=axis)
        out = out + discount**i * z
    return out / math.sqrt(sum(discount ** (2 * i) for i in range(levels)))
