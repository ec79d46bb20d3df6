"""Tensor transforms shared by the loaders: layout, value range, padding, flips."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_MAX_CHANNELS = 4


def to_nchw(array: np.ndarray) -> np.ndarray:
    """``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` to ``(N, C, H, W)``.

    A 4-D array is channels-last when its last axis has at most 4 entries and its second more,
    channels-first in the opposite case; anything else is ambiguous and rejected.
    """
    if array.ndim == 3:
        return array[:, None]
    if array.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W), (N, H, W, C) or (N, C, H, W), got {array.shape}")
    last, second = array.shape[3] <= _MAX_CHANNELS, array.shape[1] <= _MAX_CHANNELS
    if last and not second:
        return array.transpose(0, 3, 1, 2)
    if second and not last:
        return array
    raise ValueError(
        f"cannot tell the channel axis of images of shape {array.shape}: exactly one of axes 1 and 3 "
        f"must have at most {_MAX_CHANNELS} entries"
    )


def to_unit_range(array: np.ndarray) -> torch.Tensor:
    """Pixel values to float32 in ``[-1, 1]``, same shape.

    Integers are 8-bit values ``0..255``; floats are taken to be in ``[-1, 1]`` already when
    their minimum is negative, else in ``[0, 1]``. Values outside the expected range raise.
    """
    array = np.asarray(array)
    if array.size == 0:
        raise ValueError("no images (the array is empty)")
    if array.dtype.kind in "ui":
        if array.min() < 0 or array.max() > 255:
            raise ValueError(f"integer pixels must lie in 0..255, got {array.min()}..{array.max()}")
        return torch.from_numpy(array.astype(np.float32, order="C") / 127.5 - 1.0)
    if array.dtype.kind != "f":
        raise ValueError(f"pixels must be integers (0..255) or floats, got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError("float pixels must be finite (no NaN or inf)")
    low, high = float(array.min()), float(array.max())
    expected = (-1.0, 1.0) if low < 0 else (0.0, 1.0)
    if low < expected[0] - 1e-3 or high > expected[1] + 1e-3:
        raise ValueError(
            f"float pixels must lie in [0, 1] or [-1, 1], got {low:.4g}..{high:.4g}"
        )
    x = torch.from_numpy(array.astype(np.float32, order="C"))
    if low >= 0:
        x = 2 * x - 1
    return x.clamp_(-1.0, 1.0)


def pad_square(images: torch.Tensor, size: int, value: float = -1.0) -> torch.Tensor:
    """Pad ``(N, C, H, W)`` to ``(N, C, size, size)`` with ``value``, centred (odd extra on the bottom/right)."""
    height, width = images.shape[-2:]
    if size < max(height, width):
        raise ValueError(f"pad_to={size} is smaller than the images ({height}x{width})")
    top, left = (size - height) // 2, (size - width) // 2
    return F.pad(images, (left, size - width - left, top, size - height - top), value=value)


def random_hflip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of ``(N, C, H, W)`` left-right with probability 1/2 (a new tensor)."""
    device = generator.device if generator is not None else images.device
    flip = (torch.rand(len(images), generator=generator, device=device) < 0.5).to(images.device)
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
