"""A disk cache of reference statistics (mean, covariance, optionally features) of a dataset split.

One ``.npz`` file per (dataset/split ``key``, extractor name, image size, data hash); the short
sha256 of the uint8-quantised images in the name means a changed dataset never reads stale
statistics, and extractor names carry their weights' hash. Files are written atomically
(temporary file + ``os.replace``). The cache lives under ``cache_dir()``.

A split held in memory goes to ``reference_stats``; one too large for that (a folder or Arrow data
set that training streamed) to ``streamed_reference_stats``, which reads it a batch at a time and
writes the same file: the hash, and so the cache entry, is that of the whole split either way.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ._arrays import as_images, sha256_images, to_uint8
from ._io import atomic_write
from .extractors import FeatureExtractor
from .frechet import feature_stats

CACHE_VAR = "SAGD_CACHE"
# features kept by default up to this many numbers (128 MB of float32): 10k test images × 2048 Inception features fit
MAX_KEPT_VALUES = 2**25


def cache_dir() -> Path:
    """``$SAGD_CACHE``, else ``~/.cache/sagd``: reference statistics (``reference/``) and trained classifiers."""
    return Path(os.environ.get(CACHE_VAR) or Path.home() / ".cache" / "sagd").expanduser()


@dataclass(frozen=True)
class ReferenceStats:
    """Statistics of reference features: ``mu`` ``(F,)``, ``cov`` ``(F, F)`` float64, ``features`` ``(N, F)`` float32 or None."""

    mu: np.ndarray
    cov: np.ndarray
    features: np.ndarray | None
    n: int
    path: Path


def cache_path(extractor: FeatureExtractor, images, key: str, cache_dir: str | os.PathLike) -> Path:
    """``<cache_dir>/<key>--<extractor.name>--<C>x<H>x<W>--<sha256[:12]>.npz`` (unsafe characters become ``_``)."""
    images = as_images(images)
    return _cache_file(cache_dir, key, extractor, images.shape[1:], sha256_images(images))


def _cache_file(cache_dir, key: str, extractor: FeatureExtractor, shape, digest: str) -> Path:
    stem = "--".join([key, extractor.name, "x".join(str(s) for s in shape), digest[:12]])
    return Path(cache_dir) / (re.sub(r"[^A-Za-z0-9._=+-]", "_", stem) + ".npz")


def reference_stats(
    extractor: FeatureExtractor,
    images,
    key: str,
    cache_dir: str | os.PathLike,
    keep_features: bool | None = None,
    batch_size: int = 256,
) -> ReferenceStats:
    """Mean and covariance of ``extractor(images)``, read from the cache or computed and cached.

    Args:
        extractor: any ``FeatureExtractor``; its ``name`` is part of the cache key.
        images: the reference split ``(N, C, H, W)`` in ``[-1, 1]``.
        key: dataset and split, e.g. ``"fashion_mnist/test"``.
        cache_dir: folder of the cache files (created when missing).
        keep_features: also store the features (needed for KID and precision/recall);
            ``None`` keeps them when they have at most ``MAX_KEPT_VALUES`` numbers.
    """
    path = cache_path(extractor, images, key, cache_dir)
    if path.is_file():
        return load_reference(path)
    return save_reference(path, extractor(images, batch_size=batch_size), keep_features)


def streamed_reference_stats(
    extractor: FeatureExtractor,
    source: Dataset,
    key: str,
    cache_dir: str | os.PathLike,
    keep_features: bool | None = None,
    batch_size: int = 256,
    workers: int = 2,
) -> ReferenceStats:
    """``reference_stats`` of a split too large to hold: ``source``, a map-style data set of ``(image (C, H, W)
    in [-1, 1], label)`` with a ``shape`` attribute (``data.stream.FolderSource``, ``ArrowSource``), read
    ``batch_size`` images at a time by ``workers`` DataLoader processes.

    A first pass hashes the split (the hash ``reference_stats`` computes for the same images, so both share
    cache files); on a cache miss a second pass extracts features and accumulates their mean and covariance in
    float64. Memory: a batch of images and ``(F, F)`` statistics, plus the features where they are kept
    (``keep_features``, as in ``reference_stats``).
    """
    n, shape = len(source), tuple(source.shape)
    digest = hashlib.sha256(str((n, *shape)).encode())
    for images in _read(source, batch_size, workers):
        digest.update(to_uint8(images).numpy().tobytes())
    path = _cache_file(cache_dir, key, extractor, shape, digest.hexdigest())
    if path.is_file():
        return load_reference(path)
    moments, kept = Moments(), []
    for images in _read(source, batch_size, workers):
        features = torch.as_tensor(extractor(images, batch_size=batch_size)).cpu().float()
        moments.add(features)
        if keep_features is None:
            keep_features = n * features.shape[1] <= MAX_KEPT_VALUES
        if keep_features:
            kept.append(features)
    mu, cov = moments.stats()
    return _write(path, mu, cov, n, torch.cat(kept).numpy() if keep_features else None)


class Moments:
    """Running mean and unbiased covariance (float64) of feature batches ``(B, F)``, shifted by the first
    batch's mean so that large means do not cancel the spread."""

    def __init__(self):
        self.n, self.shift, self.sum, self.outer = 0, None, None, None

    def add(self, features: torch.Tensor) -> None:
        f = features.to(torch.float64)
        if self.shift is None:
            self.shift = f.mean(0)
            self.sum, self.outer = torch.zeros_like(self.shift), torch.zeros(f.shape[1], f.shape[1], dtype=f.dtype)
        c = f - self.shift
        self.n += len(f)
        self.sum += c.sum(0)
        self.outer += c.T @ c

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(F,)`` and covariance ``(F, F)``, as ``feature_stats`` gives for all the batches at once."""
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.n}")
        mean = self.sum / self.n
        cov = (self.outer - self.n * torch.outer(mean, mean)) / (self.n - 1)
        return (self.shift + mean).numpy(), cov.numpy()


def _read(source: Dataset, batch_size: int, workers: int):
    """``source``'s images in order, ``(≤ batch_size, C, H, W)`` at a time."""
    yield from DataLoader(source, batch_size=batch_size, num_workers=workers, collate_fn=_stack_images)


def _stack_images(items: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    return torch.stack([image for image, _ in items])


def load_reference(path: str | os.PathLike) -> ReferenceStats:
    """The statistics in a cache file written by ``save_reference``."""
    with np.load(path, allow_pickle=False) as z:
        features = z["features"] if "features" in z.files else None
        return ReferenceStats(z["mu"], z["cov"], features, int(z["n"]), Path(path))


def save_reference(path: str | os.PathLike, features, keep_features: bool | None = None) -> ReferenceStats:
    """Write the mean and covariance of ``features`` ``(N, F)`` (and the features themselves, see
    ``reference_stats``) to ``path`` atomically; returns what a later ``load_reference`` reads."""
    features = np.asarray(features, dtype=np.float32)
    mu, cov = feature_stats(features)
    if keep_features is None:
        keep_features = features.size <= MAX_KEPT_VALUES
    return _write(path, mu, cov, len(features), features if keep_features else None)


def _write(path, mu: np.ndarray, cov: np.ndarray, n: int, features: np.ndarray | None) -> ReferenceStats:
    arrays = {"mu": mu, "cov": cov, "n": np.array(n)}
    if features is not None:
        arrays["features"] = features

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)
    return ReferenceStats(mu, cov, features, n, Path(path))
