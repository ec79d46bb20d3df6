"""Feature extractors: ``extractor(images) -> features``.

An extractor maps images ``(N, C, H, W)`` in ``[-1, 1]`` to features ``(N, F)`` (float32, CPU)
and has a ``name`` that identifies it in caches of reference statistics. Subclasses implement
``extract`` on one batch; ``__call__`` handles batching, devices and ``no_grad``. Inception-v3
lives in ``inception.py``, the in-domain classifier in ``classifier.py``.
"""

from __future__ import annotations

import torch

from ._arrays import as_images


class FeatureExtractor:
    """Base class: set ``name`` (and ``device``), implement ``extract(batch) -> (B, F)``."""

    name: str
    device: torch.device | str = "cpu"

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, images, batch_size: int = 256) -> torch.Tensor:
        """Features ``(N, F)`` float32 on the CPU of ``images`` ``(N, C, H, W)`` in ``[-1, 1]``."""
        images = as_images(images)
        return torch.cat([
            self.extract(images[i:i + batch_size].to(self.device, torch.float32)).float().cpu()
            for i in range(0, images.shape[0], int(batch_size))
        ])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class PixelFeatures(FeatureExtractor):
    """The flattened pixels, ``F = C·H·W`` (for tests and tiny images)."""

    name = "pixels"

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)


class RandomProjectionFeatures(FeatureExtractor):
    """A fixed Gaussian random projection of the pixels to ``dim`` features.

    The matrix ``(C·H·W, dim)`` has entries ``N(0, 1 / (C·H·W))``, drawn from ``seed`` for each
    input size, so the same seed always gives the same features.
    """

    def __init__(self, dim: int = 64, seed: int = 0):
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim, self.seed = int(dim), int(seed)
        self.name = f"randproj-{self.dim}-seed{self.seed}"
        self._matrices: dict[int, torch.Tensor] = {}

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        d = images[0].numel()
        if d not in self._matrices:
            g = torch.Generator().manual_seed(self.seed)
            self._matrices[d] = torch.randn(d, self.dim, generator=g) / d**0.5
        return images.flatten(1) @ self._matrices[d].to(images.device)
