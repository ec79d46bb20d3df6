"""Input checks and conversions shared by the metrics: feature arrays and image batches."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def as_features(x, name: str = "features") -> torch.Tensor:
    """A feature array ``(N, F)`` (torch or numpy) as a float64 CPU tensor."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach().to("cpu", torch.float64)
    if x.dim() != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, F), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    return x


def as_images(x, name: str = "images") -> torch.Tensor:
    """An image batch ``(N, C, H, W)`` (torch or numpy, float) as a floating-point tensor.

    Keeps the device; float64 stays float64, anything else becomes float32.
    """
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach()
    if x.dim() != 4 or min(x.shape) < 1:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if x.dtype != torch.float64:
        x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    return x


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in ``[-1, 1]`` quantised to ``uint8`` ``[0, 255]`` (clamped), same shape."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def sha256_images(images) -> str:
    """sha256 of the ``uint8``-quantised images ``(N, C, H, W)``, their shape included."""
    q = to_uint8(as_images(images).cpu()).numpy()
    h = hashlib.sha256(str(q.shape).encode())
    h.update(np.ascontiguousarray(q).tobytes())
    return h.hexdigest()
