"""Per-frequency multipliers on the rfft half grid: the transforms behind ``sagd.diffusion.frequency``.

A real, even function ``c(k)`` on the full grid (``c(k) = c(-k)``) acts on real signals as
``Fᴴ diag(c) F``; on the half grid that ``rfftn`` keeps this is one product per coefficient. Tensors
``x`` are ``(..., C, *spatial)``; their transforms ``(..., C, *spatial[:-1], spatial[-1] // 2 + 1)``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .grid import radial_frequency


def _dims(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


def rfft(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """The orthonormal DFT of ``x`` over its last ``ndim`` axes, half grid (``rfftn(norm="ortho")``)."""
    return torch.fft.rfftn(x, dim=_dims(ndim), norm="ortho")


def irfft(xf: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """The inverse of ``rfft`` for signals of spatial shape ``spatial``."""
    return torch.fft.irfftn(xf, s=tuple(spatial), dim=_dims(len(spatial)), norm="ortho")


def half(c: torch.Tensor) -> torch.Tensor:
    """The half-grid part of a full-grid ``(..., *spatial)`` function (last axis cut to ``n // 2 + 1``)."""
    return c[..., : c.shape[-1] // 2 + 1]


def multiply(x: torch.Tensor, c: torch.Tensor, ndim: int) -> torch.Tensor:
    """``Fᴴ diag(c) F x`` for a real, even ``c`` on the full grid, shape ``(C, *spatial)``; ``x`` ``(..., C, *spatial)``."""
    return irfft(rfft(x, ndim) * half(c).to(x.dtype), x.shape[-ndim:])


def heat_eigenvalues(spatial: Sequence[int]) -> torch.Tensor:
    """``λ_k = (2π|k|)²``, the eigenvalues of ``-Δ`` on the periodic grid, shape ``spatial``, float64.

    ``|k|`` in cycles per sample: the heat equation ``∂u/∂τ = Δu`` multiplies frequency ``k`` by
    ``exp(-λ_k τ)``, a Gaussian blur of standard deviation ``√(2τ)`` samples. Hoogeboom & Salimans and
    Rissanen et al. write ``π² (i²/H² + j²/W²)`` for the DCT index ``(i, j)``, whose frequency is
    ``i / 2H`` cycles per sample: the same values, with reflecting instead of periodic boundaries.
    """
    return (2 * torch.pi * radial_frequency(spatial)) ** 2
