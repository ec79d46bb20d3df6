"""Frequency grids over the spatial axes of a ``(C, *spatial)`` sample.

Frequencies are in cycles per sample (``torch.fft.fftfreq``): the Nyquist frequency is 0.5 on
every axis and the corner of a 2-D grid lies at ``sqrt(2)/2``. ``unit="nyquist"`` divides by 0.5,
the paper's second reading of its band cutoffs (docs/method.md §10).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

UNITS = ("cycles", "nyquist")
MAX_VALUES = 2**26
"""The most values ``C·∏spatial`` of one sample a spectrum is built for (its weights: 512 MiB of float64)."""


def check_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, ...]:
    """Validate a sample shape ``(C, *spatial)``: at least one spatial axis, all sizes positive, at most
    ``MAX_VALUES`` values."""
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a tuple (C, *spatial) of positive ints, got {shape!r}") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(
            f"{name} must be (C, *spatial) with C >= 1 and at least one spatial axis of size >= 1, got {shape}"
        )
    if math.prod(shape) > MAX_VALUES:
        raise ValueError(f"{name} {shape} holds {math.prod(shape):.3g} values per sample; the limit is {MAX_VALUES:,}")
    return shape


def axis_frequencies(spatial: Sequence[int]) -> list[torch.Tensor]:
    """Per-axis frequencies in cycles per sample, broadcast to the full grid ``spatial`` (float64)."""
    grids = torch.meshgrid(*[torch.fft.fftfreq(n, dtype=torch.float64) for n in spatial], indexing="ij")
    return list(grids)


def radial_frequency(spatial: Sequence[int], unit: str = "cycles") -> torch.Tensor:
    """``|k|`` on the full grid ``spatial``, shape ``spatial``, float64."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    r = torch.sqrt(sum(k**2 for k in axis_frequencies(spatial)))
    return r / 0.5 if unit == "nyquist" else r


def frequency_bin(spatial: Sequence[int]) -> float:
    """The smallest non-zero frequency spacing of the grid, ``1 / max(spatial)`` cycles per sample."""
    return 1.0 / max(spatial)


def max_radius(spatial: Sequence[int]) -> float:
    """The largest ``|k|`` on the grid in cycles per sample (``sqrt(ndim)/2`` for even sizes)."""
    return math.sqrt(sum((n // 2 / n) ** 2 for n in spatial))


def negate_frequencies(w: torch.Tensor, ndim: int) -> torch.Tensor:
    """``w(-k)`` for a tensor whose last ``ndim`` axes are a full FFT grid."""
    dims = tuple(range(-ndim, 0))
    return torch.roll(torch.flip(w, dims), shifts=(1,) * ndim, dims=dims)
