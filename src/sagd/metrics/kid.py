"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._arrays import as_features


class KID(NamedTuple):
    """KID averaged over subsets, and the standard error of that mean (``std / sqrt(subsets)``)."""

    mean: float
    se: float


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² between ``x`` and ``y`` ``(m, F)`` with ``k(a, b) = (a·b / F + 1)³``."""
    m, f = x.shape
    kxx = (x @ x.T / f + 1) ** 3
    kyy = (y @ y.T / f + 1) ** 3
    kxy = (x @ y.T / f + 1) ** 3
    off = m * (m - 1)
    return (kxx.sum() - kxx.trace()) / off + (kyy.sum() - kyy.trace()) / off - 2 * kxy.mean()


def kid(
    features1,
    features2,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> KID:
    """KID between feature sets ``(N1, F)`` and ``(N2, F)`` (torch or numpy).

    Each of ``subsets`` rounds draws ``m = min(subset_size, N1, N2)`` rows from each set without
    replacement (rounds are independent, so a row can recur across rounds) and computes the
    unbiased MMD²; its expectation is 0 when both sets come from the same distribution, so the
    estimate can be slightly negative. ``se`` treats the rounds as independent (NaN for one round).
    """
    x, y = as_features(features1, "features1"), as_features(features2, "features2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    if int(subsets) < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(int(subset_size), x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 rows, got subset_size={subset_size}, N1={x.shape[0]}, N2={y.shape[0]}")
    values = torch.stack([
        _mmd2_unbiased(
            x[torch.randperm(x.shape[0], generator=generator)[:m]],
            y[torch.randperm(y.shape[0], generator=generator)[:m]],
        )
        for _ in range(int(subsets))
    ])
    se = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return KID(float(values.mean()), se)
