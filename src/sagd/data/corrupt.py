"""Band-confined corruption for the selective-omission experiment (docs/method.md §7, §10)."""

from __future__ import annotations

import functools

import torch

from .. import spectral


def corrupt_band(
    x: torch.Tensor,
    low: float,
    high: float,
    gamma: float = 1.0,
    unit: str = "nyquist",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x + gamma · e`` with ``e`` noise confined to the radial band ``low <= |k| <= high``.

    ``e`` is white noise filtered by ``spectral.band_pass(x.shape[1:], low, high, unit=unit)``,
    then divided by its own spatial standard deviation (about its mean, + 1e-8) per sample and
    channel, the paper's convention. ``unit`` defaults to ``"nyquist"``, the reading of the
    paper's bands [0.1, 0.2] … [0.8, 0.9]. Shapes: ``x`` and the result are ``(N, C, *spatial)``;
    the noise is drawn on ``x``'s device.
    """
    if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() < 3:
        raise ValueError(f"x must be a float tensor (N, C, *spatial), got {getattr(x, 'shape', type(x))}")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    band = _band(tuple(x.shape[1:]), low, high, unit)
    e = band.sqrt(torch.randn(x.shape, generator=generator, device=x.device, dtype=dtype))
    spatial = tuple(range(2, x.dim()))
    e = e / (e.std(dim=spatial, correction=0, keepdim=True) + 1e-8)
    return (x + gamma * e).to(x.dtype)


@functools.lru_cache(maxsize=16)
def _band(shape: tuple[int, ...], low: float, high: float, unit: str) -> spectral.SpectralCovariance:
    """The band's filter, made once: a training step would otherwise rebuild it on the host and upload it
    to the device (an upload waits for the device)."""
    return spectral.band_pass(shape, low, high, unit=unit)
