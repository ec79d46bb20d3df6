"""Sample-quality metrics: FID/KID/precision-recall on pluggable features, and spectral metrics.

Feature metrics take arrays ``(N, F)`` (torch or numpy); extractors turn images ``(N, C, H, W)``
in ``[-1, 1]`` into such arrays. Spectral metrics work on the images directly.
"""

from ._arrays import sha256_images
from .choice import extractor_for
from .classifier import Classifier, ClassifierFeatures, accuracy, load_classifier, save_classifier, train_classifier
from .evaluate import evaluate_samples
from .extractors import FeatureExtractor, PixelFeatures, RandomProjectionFeatures
from .frechet import feature_stats, fid_from_features, frechet_distance
from .inception import InceptionFeatures, InceptionUnavailable, InceptionV3, default_inception_weights
from .inception_fid import inception_fid, inception_reference
from .kid import KID, kid
from .precision_recall import PrecisionRecall, precision_recall
from .reference import ReferenceStats, cache_dir, reference_stats, streamed_reference_stats
from .spectrum import (
    band_energy,
    log_spectral_distance,
    power_spectrum,
    radial_average,
    raps,
    relative_band_energy,
    snr_curves,
)

__all__ = [
    "KID",
    "Classifier",
    "ClassifierFeatures",
    "FeatureExtractor",
    "InceptionFeatures",
    "InceptionUnavailable",
    "InceptionV3",
    "PixelFeatures",
    "PrecisionRecall",
    "RandomProjectionFeatures",
    "ReferenceStats",
    "accuracy",
    "band_energy",
    "cache_dir",
    "default_inception_weights",
    "evaluate_samples",
    "extractor_for",
    "feature_stats",
    "fid_from_features",
    "inception_fid",
    "inception_reference",
    "frechet_distance",
    "kid",
    "load_classifier",
    "log_spectral_distance",
    "power_spectrum",
    "precision_recall",
    "radial_average",
    "raps",
    "reference_stats",
    "relative_band_energy",
    "save_classifier",
    "sha256_images",
    "snr_curves",
    "streamed_reference_stats",
    "train_classifier",
]
