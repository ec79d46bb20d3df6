"""``evaluate_samples``: every sample-quality number of one set of generated images."""

from __future__ import annotations

import torch

from .extractors import FeatureExtractor
from .frechet import feature_stats, frechet_distance
from .kid import kid
from .precision_recall import precision_recall
from .reference import ReferenceStats
from .spectrum import log_spectral_distance


def evaluate_samples(
    samples,
    reference_images,
    extractor: FeatureExtractor,
    reference: ReferenceStats | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    k: int = 3,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """FID, KID, precision/recall and log-spectral distance of ``samples`` against reference images.

    Args:
        samples, reference_images: ``(N, C, H, W)`` in ``[-1, 1]``.
        extractor: the feature space (``ClassifierFeatures``, ``InceptionFeatures``, ...).
        reference: cached statistics of ``reference_images`` for this extractor (from
            ``reference_stats``); its features are used when stored, else they are recomputed.
        kid_subsets, kid_subset_size, generator: passed to ``kid``; ``k`` to ``precision_recall``.

    Returns ``{"fid", "kid_mean", "kid_se", "precision", "recall", "lsd"}`` (floats; ``lsd`` in dB).
    """
    fake = extractor(samples, batch_size=batch_size)
    if reference is not None and reference.features is not None:
        real = torch.as_tensor(reference.features)
    else:
        real = extractor(reference_images, batch_size=batch_size)
    mu, cov = (reference.mu, reference.cov) if reference is not None else feature_stats(real)
    k_mean, k_se = kid(real, fake, subsets=kid_subsets, subset_size=kid_subset_size, generator=generator)
    precision, recall = precision_recall(real, fake, k=k)
    return {
        "fid": frechet_distance(*feature_stats(fake), mu, cov),
        "kid_mean": k_mean,
        "kid_se": k_se,
        "precision": precision,
        "recall": recall,
        "lsd": log_spectral_distance(samples, reference_images),
    }
