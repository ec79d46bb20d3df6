"""Feature extractors: ``extractor(images) -> features``.

An extractor maps images ``(N, C, H, W)`` in ``[-1, 1]`` to features ``(N, F)`` (float32, CPU)
and has a ``name`` that identifies it in caches of reference statistics. Subclasses implement
``extract`` on one batch; ``__call__`` handles batching, devices and ``no_grad``.
"""

from __future__ import annotations

import os

import torch

from ._arrays import as_images, to_uint8

INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"


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


class InceptionUnavailable(RuntimeError):
    """Raised when Inception features are asked for but ``torch-fidelity`` or its weights are missing."""


def default_inception_weights() -> str:
    """Where torch-fidelity caches its Inception-v3 weights: ``<torch hub dir>/checkpoints/``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", INCEPTION_WEIGHTS)


class InceptionFeatures(FeatureExtractor):
    """Inception-v3 features from ``torch-fidelity`` (the FID standard), loaded from disk only.

    Args:
        feature: torch-fidelity's feature name: ``"2048"`` (pool3, standard FID) or ``"768"``
            (the block the paper uses for its non-ImageNet datasets, SAGD.md §0), also ``"64"``, ``"192"``.
        weights_path: the weights file; defaults to torch-fidelity's cache path
            (``default_inception_weights()``). Nothing is ever downloaded.
        device: where the network runs.

    Grey images are repeated to 3 channels and quantised to ``uint8``; torch-fidelity resizes
    them to 299×299. Raises ``InceptionUnavailable`` when the package or the weights are missing.
    """

    def __init__(self, feature: str = "2048", weights_path: str | None = None, device: torch.device | str = "cpu"):
        weights_path = weights_path or default_inception_weights()
        help_ = f"pip install sagd[inception] and place {INCEPTION_WEIGHTS} at {weights_path} (or pass weights_path=)"
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except Exception as err:  # torch-fidelity also fails to import without a working torchvision
            raise InceptionUnavailable(f"Inception features need torch-fidelity ({err}): {help_}") from None
        if not os.path.isfile(weights_path):
            raise InceptionUnavailable(f"Inception weights not found at {weights_path}: {help_}")
        self.feature, self.device = str(feature), device
        self.name = f"inception-v3-{self.feature}"
        self.net = FeatureExtractorInceptionV3(
            self.name, [self.feature], feature_extractor_weights_path=weights_path
        ).to(device).eval()

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        x = to_uint8(images)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] != 3:
            raise ValueError(f"Inception features need 1 or 3 channels, got {x.shape[1]}")
        return self.net(x)[0]
