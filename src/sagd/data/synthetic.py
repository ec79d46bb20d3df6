"""Synthetic Gaussian random fields: data whose distribution is known exactly (an oracle)."""

from __future__ import annotations

import torch

from .. import spectral
from .image_data import ImageData, check_size

GRF_STD = 1.0 / 3.0
"""Per-pixel standard deviation of ``grf`` data: ``power_law`` fields (variance 1) times ``GRF_STD``."""


def grf(split: str, alpha: float = -1.0, size: int = 16, channels: int = 1, n: int = 4096, seed: int = 0) -> ImageData:
    """``n`` Gaussian random fields with power spectrum ``(|k| + k0)^(2α)``: ``(n, channels, size, size)``.

    The data are exactly ``N(0, GRF_STD² · Σ)`` with ``Σ = spectral.power_law((channels, size,
    size), alpha)`` (default ``k0``): per-pixel std 1/3, so about 99.7 % of values lie in
    ``[-1, 1]``. They are **not clipped**, which would break Gaussianity. ``α = -1`` gives the
    ``1/|k|²`` power of natural images. The train split is drawn with seed ``2·seed``, the test
    split with ``2·seed + 1``. Unlabelled; no flips (more data is one draw away).
    """
    if n < 1 or size < 1 or channels < 1:
        raise ValueError(f"n, size and channels must be >= 1, got n={n}, size={size}, channels={channels}")
    check_size("grf", n, (channels, size, size))
    generator = torch.Generator().manual_seed(2 * seed + (split == "test"))
    cov = spectral.power_law((channels, size, size), alpha)
    images = GRF_STD * cov.sample(n, generator=generator, dtype=torch.float64)
    return ImageData(images.float())
