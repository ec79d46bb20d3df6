"""Spectrum specs: strings such as ``power_law:alpha=-0.5*band_stop:low=0.3,high=0.5``.

A spec is a ``*``-separated product of ``name`` or ``name:key=value,...`` terms, one per profile
in ``spectral.profiles``; ``shape`` is supplied by the caller. Band pairs of ``two_band`` are
written ``low_band=0-0.3,high_band=0.5-1``.
"""

from __future__ import annotations

import inspect
from typing import Sequence

import torch

from . import profiles
from .pyramid import pyramid
from .covariance import SpectralCovariance

_PROFILES = {
    "isotropic": profiles.isotropic,
    "power_law": profiles.power_law,
    "band_pass": profiles.band_pass,
    "band_stop": profiles.band_stop,
    "two_band": profiles.two_band,
    "omission": profiles.omission,
    "offset": profiles.offset,
    "orientation": profiles.orientation,
    "data_matched": profiles.data_matched,
    "pyramid": pyramid,
}
_STRINGS = {"unit"}
_BOOLS = {"normalize", "per_channel"}
_PAIRS = {"low_band", "high_band"}


def _value(term: str, key: str, raw: str):
    if key in _STRINGS:
        return raw
    if key in _BOOLS:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"spectrum term {term!r}: {key} must be true or false, got {raw!r}")
        return raw.lower() in ("true", "1")
    try:
        if key in _PAIRS:
            lo, hi = raw.split("-")
            return (float(lo), float(hi))
        return float(raw)
    except ValueError:
        want = "a pair low-high" if key in _PAIRS else "a number"
        raise ValueError(f"spectrum term {term!r}: {key} must be {want}, got {raw!r}") from None


def keyword_items(where: str, rest: str, name: str, accepted: Sequence[str], value) -> dict:
    """The ``key=value,...`` part ``rest`` of a spec term of ``name`` as keyword arguments, each converted by
    ``value(key, raw)``; an item without ``=`` or a key outside ``accepted`` is a ``ValueError`` starting ``where``."""
    kwargs = {}
    for item in filter(None, rest.split(",")):
        key, eq, raw = item.partition("=")
        if not eq:
            raise ValueError(f"{where}: expected key=value, got {item!r}")
        if key not in accepted:
            raise ValueError(f"{where}: unknown key {key!r}; {name} accepts {', '.join(accepted) or 'no keys'}")
        kwargs[key] = value(key, raw)
    return kwargs


def parse_spec(spec: str) -> list[tuple[str, dict]]:
    """Split a spec into ``[(profile name, keyword arguments), ...]``; raises ``ValueError`` naming the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spectrum spec must be a non-empty string, got {spec!r}")
    terms = []
    for term in spec.replace(" ", "").split("*"):
        name, _, rest = term.partition(":")
        if name not in _PROFILES:
            raise ValueError(f"spectrum term {term!r}: unknown profile {name!r}; known: {', '.join(_PROFILES)}")
        params = inspect.signature(_PROFILES[name]).parameters
        accepted = [p for p in params if p not in ("shape", "data")]
        required = [p for p in accepted if params[p].default is inspect.Parameter.empty]
        kwargs = keyword_items(f"spectrum term {term!r}", rest, name, accepted, lambda key, raw: _value(term, key, raw))
        missing = [p for p in required if p not in kwargs]
        if missing:
            raise ValueError(f"spectrum term {term!r}: missing key {', '.join(missing)} (e.g. {name}:{','.join(p + '=...' for p in required)})")
        terms.append((name, kwargs))
    return terms


def from_spec(spec: str, shape: Sequence[int], data: torch.Tensor | None = None) -> SpectralCovariance:
    """Build the covariance a spec describes for samples of ``shape = (C, *spatial)``.

    ``data`` (``(N, C, *spatial)``) is needed by ``data_matched`` terms only.
    """
    cov = None
    for name, kwargs in parse_spec(spec):
        try:
            if name == "data_matched":
                if data is None:
                    raise ValueError("needs training data, which this caller did not provide")
                term = profiles.data_matched(data, **kwargs)
            else:
                term = _PROFILES[name](shape, **kwargs)
        except ValueError as e:
            raise ValueError(f"spectrum term {name!r}: {e}") from None
        cov = term if cov is None else cov * term
    return cov
