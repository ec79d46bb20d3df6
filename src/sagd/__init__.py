"""sagd: Spectrally Anisotropic Gaussian Diffusion (arXiv 2510.09660)."""

from . import diffusion, spectral

__version__ = "0.1.0"
__all__ = ["diffusion", "spectral", "__version__"]
