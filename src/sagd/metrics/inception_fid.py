"""Inception FID and KID of samples against a data set split, with the split's statistics cached.

``inception_fid(samples, "fashion_mnist")`` is the paper's metric in one call: the FID Inception-v3
(``inception.py``) at one tap, reference statistics of the split read from (or written once to)
``cache_dir()/reference``, the same cache ``sagd eval --features inception-<tap>`` uses.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch

from ..data import load_dataset
from .frechet import feature_stats, frechet_distance
from .inception import TAPS, InceptionFeatures, InceptionV3
from .kid import kid
from .reference import ReferenceStats, cache_dir, cache_path, load_reference, save_reference


def inception_reference(images, key: str, taps: Sequence[str] = TAPS, network: InceptionV3 | None = None,
                        cache: str | os.PathLike | None = None) -> dict[str, ReferenceStats]:
    """Reference statistics ``{tap: ReferenceStats}`` (features kept) of ``images`` ``(N, C, H, W)`` in ``[-1, 1]``.

    Taps already cached under ``cache`` (default ``cache_dir()/reference``) are read; the others are
    computed in one pass of the network and cached. ``key`` names the data, e.g. ``"fashion_mnist/test"``.
    """
    network = network or InceptionV3()
    cache = cache_dir() / "reference" if cache is None else cache
    paths = {t: cache_path(InceptionFeatures(t, network=network), images, key, cache) for t in taps}
    stats = {t: load_reference(p) for t, p in paths.items() if p.is_file()}
    missing = [t for t in taps if t not in stats or stats[t].features is None]
    if missing:
        computed = network(images, missing)
        stats.update({t: save_reference(paths[t], computed[t], keep_features=True) for t in missing})
    return {t: stats[t] for t in taps}


def inception_fid(samples, dataset: str, split: str = "test", tap: str = "2048", data_root: str | None = None,
                  weights: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                  kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0,
                  device: torch.device | str = "cpu") -> dict:
    """Inception FID and KID of ``samples`` ``(N, C, H, W)`` in ``[-1, 1]`` against a split of ``dataset``.

    Args:
        dataset, split, data_root: the reference images (``load_dataset``); they must have the
            samples' shape ``(C, H, W)``, so both are resized alike.
        tap: ``"2048"`` (standard FID), ``"768"`` (the paper's non-ImageNet tables), ``"192"``, ``"64"``.
        weights: the Inception TorchScript file (default ``default_inception_weights()``).
        cache: folder of the reference statistics (default ``cache_dir()/reference``); the first call
            on a split computes them (10k images: about an hour on one CPU core).
        kid_subsets, kid_subset_size, seed: KID's subsets (``kid``), drawn from ``seed``.

    Returns ``{"fid", "kid_mean", "kid_se", "features", "n", "reference", "n_reference"}``.
    """
    reference = load_dataset(dataset, split, root=data_root).images
    samples = torch.as_tensor(samples)
    if tuple(samples.shape[1:]) != tuple(reference.shape[1:]):
        raise ValueError(f"samples have shape {tuple(samples.shape[1:])} but {dataset}/{split} has "
                         f"{tuple(reference.shape[1:])}: score samples against data of their own shape")
    extractor = InceptionFeatures(tap, weights, device)
    ref = inception_reference(reference, f"{dataset}/{split}", [extractor.feature], extractor.network, cache)[extractor.feature]
    fake = extractor(samples)
    k = kid(ref.features, fake, subsets=kid_subsets, subset_size=kid_subset_size,
            generator=torch.Generator().manual_seed(seed))
    return {"fid": frechet_distance(*feature_stats(fake), ref.mu, ref.cov), "kid_mean": k.mean, "kid_se": k.se,
            "features": extractor.name, "n": len(samples), "reference": f"{dataset}/{split}", "n_reference": ref.n}
