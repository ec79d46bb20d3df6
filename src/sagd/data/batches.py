"""The training stream: random batches drawn from a torch.Generator and nothing else."""

from __future__ import annotations

from typing import Iterator

import torch

from .image_data import ImageData
from .transforms import random_hflip


def random_batches(
    data: ImageData, batch_size: int, generator: torch.Generator, hflip: bool | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """An endless stream of ``(images (B, C, H, W), labels (B,) or None)``.

    Each batch is ``batch_size`` distinct images drawn uniformly (a fresh ``randperm`` per
    batch, no epochs), flipped left-right with probability 1/2 when ``hflip`` (default
    ``data.hflip``). The iterator keeps no state of its own: saving ``generator.get_state()``
    and restoring it later resumes the stream exactly.
    """
    if not 1 <= batch_size <= len(data):
        raise ValueError(f"batch_size must be in 1..{len(data)} (the data set's size), got {batch_size}")
    flip = data.hflip if hflip is None else hflip
    while True:
        index = torch.randperm(len(data), generator=generator, device=generator.device)[:batch_size]
        index = index.to(data.images.device)
        images = data.images[index]
        if flip:
            images = random_hflip(images, generator)
        yield images, None if data.labels is None else data.labels[index.to(data.labels.device)]
