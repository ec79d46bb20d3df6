"""Fréchet distance between Gaussians fitted to features (FID when the features are Inception's).

``FD = |μ₁ - μ₂|² + tr Σ₁ + tr Σ₂ - 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}``.

The trace term uses the symmetric form: ``Σ₁^{1/2}`` from an eigendecomposition, then the
eigenvalues of the symmetric PSD matrix ``Σ₁^{1/2} Σ₂ Σ₁^{1/2}``; eigenvalues at round-off level
are set to 0, as their square roots would add noise of order sqrt(eps). It equals
``tr sqrtm(Σ₁ Σ₂)`` without the complex parts and eps offsets a general ``sqrtm`` needs, and it
stays exact for singular covariances (fewer samples than feature dimensions).
"""

from __future__ import annotations

import numpy as np
import torch

from ._arrays import as_features


def _as_matrix(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach().to("cpu", torch.float64)


def _psd_eigvals(vals: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of a symmetric PSD matrix with round-off zeroed (below ``F · eps · max|λ|``, or negative)."""
    tol = vals.abs().max() * len(vals) * torch.finfo(vals.dtype).eps
    return torch.where(vals > tol, vals, torch.zeros_like(vals))


def _psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric PSD matrix."""
    vals, vecs = torch.linalg.eigh(0.5 * (a + a.T))
    return (vecs * _psd_eigvals(vals).sqrt()) @ vecs.T


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(F,)`` and unbiased covariance ``(F, F)`` (float64) of features ``(N, F)``, ``N >= 2``."""
    f = as_features(features)
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {f.shape[0]}")
    mu = f.mean(0)
    c = f - mu
    return mu.numpy(), (c.T @ c / (f.shape[0] - 1)).numpy()


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``.

    Args:
        mu1, mu2: means, shape ``(F,)``.
        cov1, cov2: symmetric PSD covariances, shape ``(F, F)`` (torch or numpy).

    Returns a float ``>= 0`` (round-off below 0 is clipped).
    """
    mu1, mu2 = _as_matrix(mu1), _as_matrix(mu2)
    cov1, cov2 = _as_matrix(cov1), _as_matrix(cov2)
    f = mu1.shape[0] if mu1.dim() == 1 else -1
    for name, x, shape in (("mu1", mu1, (f,)), ("mu2", mu2, (f,)), ("cov1", cov1, (f, f)), ("cov2", cov2, (f, f))):
        if tuple(x.shape) != shape or f < 1:
            raise ValueError(f"{name} must have shape {shape} (means (F,), covariances (F, F)), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} must be finite")
    s1 = _psd_sqrt(cov1)
    m = s1 @ (0.5 * (cov2 + cov2.T)) @ s1
    tr_covmean = _psd_eigvals(torch.linalg.eigvalsh(0.5 * (m + m.T))).sqrt().sum()
    diff = mu1 - mu2
    fd = diff @ diff + torch.trace(cov1) + torch.trace(cov2) - 2 * tr_covmean
    return max(float(fd), 0.0)


def fid_from_features(features1, features2) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N1, F)`` and ``(N2, F)``."""
    f1, f2 = as_features(features1, "features1"), as_features(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature dimensions differ: {f1.shape[1]} vs {f2.shape[1]}")
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))
