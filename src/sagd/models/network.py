"""``Network``: a diffusers UNet as the ``(x, t) -> output`` map the diffusion code calls.

The wrapper owns three conventions so that nothing else has to:

* time: ``t ∈ [0, 1]`` is fed to the UNet's sinusoidal embedding as ``1000 t`` (DDPM's scale);
* size: inputs are padded circularly up to a multiple of ``2**downsampling(preset)`` and the output
  is cropped back (circular because SAGD noise is circulant: periodic, like the FFT that colours it);
* classes: with ``num_classes`` set, the UNet has ``num_classes + 1`` class embeddings, the last
  being the "null" class that classifier-free guidance uses for the unconditional model.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .presets import build_unet, downsampling

TIME_SCALE = 1000.0


class Network(nn.Module):
    """``(x, t, labels) -> output`` of the same shape as ``x``.

    Args:
        preset: a key of ``models.PRESETS``.
        shape: the sample shape ``(C, H, W)``.
        num_classes: enable class conditioning with that many classes (plus the null class).

    ``x``: ``(B, C, H, W)``; ``t``: ``(B,)`` floats in ``[0, 1]``; ``labels``: ``(B,)`` int64 in
    ``[0, num_classes]`` (``num_classes`` is the null class), or ``None`` for all-null.
    """

    def __init__(self, preset: str, shape: Sequence[int], num_classes: int | None = None):
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"Network needs image shapes (C, H, W), got {tuple(shape)}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.shape = tuple(int(s) for s in shape)
        self.num_classes = num_classes
        m = 2 ** downsampling(preset)
        c, h, w = self.shape
        self.pad = (0, -w % m, 0, -h % m)  # F.pad order: (left, right, top, bottom)
        size = max(h + self.pad[3], w + self.pad[1])
        self.unet = build_unet(preset, c, size, None if num_classes is None else num_classes + 1)

    @property
    def null_class(self) -> int | None:
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if any(self.pad):
            x = F.pad(x, self.pad, mode="circular")
        if self.num_classes is not None and labels is None:
            labels = torch.full((x.shape[0],), self.null_class, device=x.device, dtype=torch.long)
        elif self.num_classes is None and labels is not None:
            raise ValueError("this network is unconditional: pass labels=None")
        out = self.unet(x, t * TIME_SCALE, class_labels=labels).sample
        return out[..., :h, :w]


def drop_labels(labels: torch.Tensor, p: float, null_class: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_class`` with probability ``p`` (classifier-free guidance training)."""
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_class), labels)
