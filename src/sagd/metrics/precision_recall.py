"""Improved precision and recall (Kynkäänniemi et al. 2019) from k-NN manifold estimates.

Each set's manifold is the union of balls around its points whose radius is the distance to
the point's k-th nearest neighbour in the same set. Precision is the share of fake points inside
the real manifold (quality); recall is the share of real points inside the fake manifold (coverage).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._arrays import as_features

_CHUNK = 1024


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` ``(N, F)`` to its k-th nearest other row, shape ``(N,)``."""
    return torch.cat([
        torch.cdist(x[i:i + _CHUNK], x).kthvalue(k + 1, dim=1).values  # the k+1-th includes the point itself
        for i in range(0, x.shape[0], _CHUNK)
    ])


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of ``points`` within ``radii`` of at least one of ``centres``."""
    inside = torch.cat([
        (torch.cdist(points[i:i + _CHUNK], centres) <= radii).any(dim=1)
        for i in range(0, points.shape[0], _CHUNK)
    ])
    return float(inside.double().mean())


def precision_recall(real, fake, k: int = 3) -> PrecisionRecall:
    """Precision and recall of ``fake`` ``(N2, F)`` against ``real`` ``(N1, F)`` (torch or numpy).

    ``k`` is the neighbourhood size of the manifold estimate (the paper's default 3); each set
    needs more than ``k`` rows. Memory is ``O(1024 · max(N1, N2))``.
    """
    x, y = as_features(real, "real"), as_features(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    k = int(k)
    if k < 1 or min(x.shape[0], y.shape[0]) <= k:
        raise ValueError(f"need k >= 1 and more than k rows in each set, got k={k}, N1={x.shape[0]}, N2={y.shape[0]}")
    return PrecisionRecall(
        precision=_coverage(y, x, _knn_radii(x, k)),
        recall=_coverage(x, y, _knn_radii(y, k)),
    )
