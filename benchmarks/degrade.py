"""The degradations of the FID-signal ladders (``fid_signal.py``, ``inception.py``): Gaussian blur and additive noise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BLUR = (0.5, 1.0, 1.5, 2.0)  # Gaussian blur σ in pixels
NOISE = (0.05, 0.1, 0.2, 0.4)  # additive Gaussian noise std on the [-1, 1] scale (then clamped)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``images`` ``(N, C, H, W)``, radius ``ceil(3σ)``, reflected borders."""
    r = math.ceil(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    x = F.pad(images, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
