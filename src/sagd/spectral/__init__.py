"""Spectral covariances: the only part of sagd that knows about frequencies."""

from .covariance import SpectralCovariance
from .grid import radial_frequency
from .power import band_power, power_spectrum
from .spec import from_spec, parse_spec
from .pyramid import pyramid, pyramid_noise
from .profiles import (
    band_pass,
    band_stop,
    data_matched,
    from_weights,
    isotropic,
    offset,
    omission,
    orientation,
    power_law,
    two_band,
)

__all__ = [
    "SpectralCovariance",
    "band_pass",
    "band_power",
    "band_stop",
    "data_matched",
    "from_spec",
    "from_weights",
    "isotropic",
    "offset",
    "omission",
    "orientation",
    "parse_spec",
    "power_law",
    "power_spectrum",
    "pyramid",
    "pyramid_noise",
    "radial_frequency",
    "two_band",
]
