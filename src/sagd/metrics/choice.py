"""Which feature space FID/KID/precision-recall use: the ``--features`` choice.

``extractor_for(choice, dataset, shape)``:

* ``PATH``: a classifier file written by ``sagd features train``;
* ``inception-2048`` (or ``inception``), ``inception-768``, ``-192``, ``-64``: a tap of the FID
  Inception-v3 (``metrics.inception``; its weights come with ``sagd[inception]``, or from
  ``--inception-weights`` / ``$SAGD_INCEPTION_WEIGHTS``);
* ``pixels`` / ``randproj``: the flattened pixels / a fixed 64-dim random projection of them;
* none (the default): the classifier shipped with sagd (``sagd/assets/``, Fashion-MNIST), else one
  trained into the cache, else pixels up to ``MAX_PIXEL_FEATURES`` numbers, else ``randproj``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .classifier import ClassifierFeatures
from .extractors import FeatureExtractor, PixelFeatures, RandomProjectionFeatures
from .inception import TAPS, InceptionFeatures, InceptionUnavailable
from .reference import cache_dir

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MAX_PIXEL_FEATURES = 256  # pixel features beyond this many numbers need more samples than an eval draws
INCEPTION_CHOICES = ("inception", *(f"inception-{tap}" for tap in TAPS))


def classifier_filename(dataset: str) -> str:
    """``classifier-<dataset spec, unsafe characters as _>.safetensors``."""
    return "classifier-" + re.sub(r"[^A-Za-z0-9._=+-]", "_", dataset.strip()) + ".safetensors"


def default_classifier(dataset: str) -> Path | None:
    """The shipped classifier for ``dataset``, else one trained into the cache, else ``None``."""
    for folder in (ASSETS, cache_dir()):
        path = folder / classifier_filename(dataset)
        if path.is_file():
            return path
    return None


def extractor_for(choice: str | None, dataset: str, shape: tuple[int, ...], device="cpu",
                  inception_weights: str | None = None) -> FeatureExtractor:
    """The extractor that ``--features choice`` names for images of ``shape`` ``(C, H, W)`` from ``dataset``
    (``inception_weights``: the Inception network file, default ``metrics.default_inception_weights()``)."""
    if choice == "pixels":
        return PixelFeatures()
    if choice == "randproj":
        return RandomProjectionFeatures()
    if choice in INCEPTION_CHOICES:
        try:
            tap = "2048" if choice == "inception" else choice.split("-")[1]
            return InceptionFeatures(tap, inception_weights, device)
        except InceptionUnavailable as e:
            raise ValueError(str(e)) from None
    if choice is not None:
        if not Path(choice).is_file():
            raise FileNotFoundError(f"--features {choice!r}: not pixels, randproj, {', '.join(INCEPTION_CHOICES)} "
                                    "or a classifier file")
        return ClassifierFeatures.load(choice, device)
    path = default_classifier(dataset)
    if path is not None:
        return ClassifierFeatures.load(path, device)
    return PixelFeatures() if math.prod(shape) <= MAX_PIXEL_FEATURES else RandomProjectionFeatures()
