"""A disk cache of reference statistics (mean, covariance, optionally features) of a dataset split.

One ``.npz`` file per (dataset/split ``key``, extractor name, image size, data hash); the short
sha256 of the uint8-quantised images in the name means a changed dataset never reads stale
statistics, and extractor names carry their weights' hash. Files are written atomically
(temporary file + ``os.replace``). The cache lives under ``cache_dir()``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._arrays import as_images, sha256_images
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
    size = "x".join(str(s) for s in images.shape[1:])
    stem = "--".join([key, extractor.name, size, sha256_images(images)[:12]])
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
    arrays = {"mu": mu, "cov": cov, "n": np.array(len(features))}
    if keep_features:
        arrays["features"] = features

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)
    return ReferenceStats(mu, cov, features if keep_features else None, len(features), Path(path))
