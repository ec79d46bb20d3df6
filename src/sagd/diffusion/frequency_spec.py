"""Process specs: ``TrainConfig.process`` strings such as ``blurring:sigma_blur_max=20,min_scale=0.001``.

A spec is ``name`` or ``name:key=value,...``. ``sagd`` (the default) takes no keys: it is the
``VPProcess`` of the run's ``spectrum``, ``schedule`` and ``noise``, built as it always was. The
others name a scheme of ``frequency.SCHEMES`` and its keyword arguments, ``shape`` supplied by the
caller: ``blurring`` (``sigma_blur_max``, ``min_scale``, ``schedule``, ``t_min``) and ``inverse_heat``
(``sigma_blur_min``, ``sigma_blur_max``, ``noise``, ``t_min``). Inverse heat keeps the data's mean
(``a_1(0) = 1``): its prior is fitted to training images (``fit_prior``) and kept with the run.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import torch

from . import frequency
from .exact import GaussianData
from .frequency import FrequencyProcess
from .frequency_exact import with_exact_prior
from ..spectral.spec import keyword_items
from .schedules import SCHEDULES

DEFAULT = "sagd"
PROCESSES = tuple(frequency.SCHEMES)  # sagd, blurring, inverse_heat
DATA_PRIOR = ("inverse_heat",)  # schemes whose terminal law keeps the data's mean: their prior comes from data


def parse_process(spec: str) -> tuple[str, dict]:
    """``(scheme name, keyword arguments)`` of a spec; a ``ValueError`` names the bad part and what is accepted."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"process spec must be a non-empty string such as {DEFAULT!r} or 'blurring', got {spec!r}")
    name, colon, rest = spec.replace(" ", "").partition(":")
    if name not in PROCESSES:
        raise ValueError(f"process {spec!r}: unknown process {name!r}; known: {', '.join(PROCESSES)}")
    if name == DEFAULT:
        if colon:
            raise ValueError(f"process {spec!r}: sagd takes no keys (its noise is the spectrum, schedule and noise keys)")
        return name, {}
    accepted = [p for p in inspect.signature(frequency.SCHEMES[name]).parameters if p != "shape"]

    def value(key: str, raw: str):
        if key == "schedule":
            if raw not in SCHEDULES:
                raise ValueError(f"process {spec!r}: schedule must be one of {', '.join(SCHEDULES)}, got {raw!r}")
            return raw
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"process {spec!r}: {key} must be a number, got {raw!r}") from None

    return name, keyword_items(f"process {spec!r}", rest, name, accepted, value)


def build(spec: str, shape: Sequence[int]) -> FrequencyProcess | None:
    """The ``FrequencyProcess`` a spec names for samples of ``shape`` ``(C, *spatial)``; ``None`` for ``sagd``
    (the caller builds its ``VPProcess``). Bad values raise a ``ValueError`` naming the spec."""
    name, kwargs = parse_process(spec)
    if name == DEFAULT:
        return None
    try:
        return frequency.SCHEMES[name](shape, **kwargs)
    except ValueError as e:
        raise ValueError(f"process {spec!r}: {e}") from None


def needs_data_prior(spec: str) -> bool:
    """Whether the process's prior is fitted to data (``fit_prior``) rather than fixed by its coefficients."""
    return parse_process(spec)[0] in DATA_PRIOR


def fit_prior(proc: FrequencyProcess, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, power)`` ``(C, *spatial)`` float64 of the Gaussian ``p_1`` for the Gaussian with the mean image and
    power spectrum of ``images`` ``(N, C, *spatial)``: ``Fᴴ a_1 F μ`` and ``a_1² P + s_1²``. For inverse heat at
    ``σ_B,max = 20`` only the DC survives ``a_1``: a Gaussian over the images' mean value plus ``δ``-noise."""
    return with_exact_prior(GaussianData.from_images(images), proc).prior()
