"""Parametrisations and Tweedie's formula per frequency for the frequency-diagonal process (docs/method.md §11).

With ``x̂_t = a x̂_0 + s ε̂`` at each frequency (``a = a_t(k)``, ``s = s_t(k)``, ``r = √(a² + s²)``) a network predicts:

* ``eps``  white ``ε``;                    ``D̂ = (x̂_t - s ε̂) / a``
* ``x0``   ``x_0``;                        ``D̂ = x̂_0``
* ``v``    ``v̂ = (a ε̂ - s x̂_0) / r``;     ``D̂ = (a x̂_t - r s v̂) / r²``

``v`` is the rotation of ``(x̂_0, ε̂)`` by the angle ``atan(s/a)`` per frequency, scaled to unit gain; where
``a² + s² = 1`` (isotropic SAGD) it is the usual ``α ε - σ x_0``. SAGD's own ``v`` (``parametrization.py``)
uses the colored noise ``n = Σ^{1/2} ε`` and a scalar ``σ_t`` instead, a different target when ``Σ ≠ I``.
Tweedie's formula per frequency: ``∇log p_t(x) = -Fᴴ diag(1/s²) F (x - Fᴴ a F D)`` on the support.
Shapes: ``x``, ``out`` ``(B, C, *spatial)``; ``t`` ``(B,)``.
"""

from __future__ import annotations

import torch

from . import parametrization
from .frequency import FrequencyProcess

PREDICTIONS = ("eps", "x0", "v")


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return prediction


def _coefficients(proc: FrequencyProcess, t: torch.Tensor, like: torch.Tensor):
    a, s = proc.coefficients(torch.as_tensor(t, dtype=torch.float64).reshape(-1))
    return a.to(like.device), s.to(like.device)


def to_denoised(proc: FrequencyProcess, prediction: str, out: torch.Tensor, x: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:
    """``D(x, t)`` from a network output ``out`` in parametrisation ``prediction``."""
    check_prediction(prediction)
    if prediction == "x0":
        return out
    a, s = _coefficients(proc, t, x)
    if prediction == "eps":
        return proc.multiply(x - proc.multiply(out, s), 1 / a)
    r2 = a**2 + s**2
    return proc.multiply(x, a / r2) - proc.multiply(out, s / r2.sqrt())


def target(proc: FrequencyProcess, prediction: str, x0: torch.Tensor, eps: torch.Tensor,
           t: torch.Tensor) -> torch.Tensor:
    """The regression target for data ``x0`` and white noise ``eps`` at times ``t``, shape of ``x0``."""
    check_prediction(prediction)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    a, s = _coefficients(proc, t, x0)
    r = (a**2 + s**2).sqrt()
    return proc.multiply(eps, a / r) - proc.multiply(x0, s / r)


class Denoiser(parametrization.Denoiser):
    """``D(x_t, t)`` of a network ``model(x_t, t)`` trained with ``loss`` on a ``FrequencyProcess`` (``to_denoised``);
    ``clip`` clamps ``D`` as ``parametrization.Denoiser``'s does."""

    check_prediction = staticmethod(check_prediction)
    to_denoised = staticmethod(to_denoised)


def score(proc: FrequencyProcess, d: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Tweedie: ``∇log p_t(x) = -Fᴴ diag(1/s²) F (x - Fᴴ a F D)`` from the denoiser's ``D``, 0 off the support."""
    a, s = _coefficients(proc, t, x)
    inv = torch.where(s > 0, 1 / s.clamp_min(torch.finfo(torch.float64).tiny) ** 2, 0.0)
    return -proc.multiply(x - proc.multiply(d, a), inv)


def denoised_from_score(proc: FrequencyProcess, grad_log_p: torch.Tensor, x: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """The inverse of ``score`` on the support: ``D = Fᴴ diag(1/a) F (x + Fᴴ s² F ∇log p_t(x))``."""
    a, s = _coefficients(proc, t, x)
    return proc.multiply(x + proc.multiply(grad_log_p, s**2), 1 / a)


def loss(model, proc: FrequencyProcess, x0: torch.Tensor, prediction: str = "eps",
         generator: torch.Generator | None = None, t: torch.Tensor | None = None,
         reduction: str = "mean") -> torch.Tensor:
    """The denoising objective ``E ‖model(x_t, t) - target‖²`` for a batch ``x0`` ``(B, C, *spatial)``.

    ``t ~ U[t_min, 1]`` per sample unless given (``(B,)``); ``x_t = proc.q_sample(x0, t, ε)``. For ``eps`` the
    error is projected onto the support (off it ε never reaches ``x_t``). ``reduction="none"`` gives ``(B,)``.
    """
    check_prediction(prediction)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if t is None:
        t = proc.t_min + (1 - proc.t_min) * torch.rand(x0.shape[0], generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = proc.q_sample(x0, t, eps)
    error = model(x_t, t) - target(proc, prediction, x0, eps, t)
    if prediction == "eps" and not proc.full_support:
        error = proc.multiply(error, proc.support.to(torch.float64))
    per_sample = error.pow(2).flatten(1).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample
