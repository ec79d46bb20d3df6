"""Network parametrisations and the training objective (docs/method.md §5).

A network ``model(x_t, t)`` predicts one of:

* ``eps``          white ε;         ``D = (x_t - σ_t Σ^{1/2} ε̂) / α_t``; loss on the support only
* ``colored_eps``  ``n = Σ^{1/2} ε`` (the paper's drop-in variant); ``D = (x_t - σ_t n̂) / α_t``
* ``x0``           ``x_0``;          ``D = x̂_0``
* ``v``            ``v = α_t n - σ_t x_0``; ``D = α_t x_t - σ_t v̂``

Every parametrisation is turned into the denoiser ``D(x, t) = E[x_0 | x_t]`` the samplers use.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .process import VPProcess

PREDICTIONS = ("eps", "colored_eps", "x0", "v")
OMISSIONS = ("noise_only", "project")


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return prediction


def to_denoised(proc: VPProcess, prediction: str, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``D(x, t)`` from a network output ``out`` in parametrisation ``prediction``; shapes ``(B, C, *spatial)``."""
    check_prediction(prediction)
    if prediction == "x0":
        return out
    a, s = (proc.expand(c, x) for c in proc.alpha_sigma(t))
    if prediction == "v":
        return a * x - s * out
    n = proc.cov.sqrt(out) if prediction == "eps" else out
    return (x - s * n) / a


def target(proc: VPProcess, prediction: str, x0: torch.Tensor, eps: torch.Tensor, n: torch.Tensor,
           t: torch.Tensor) -> torch.Tensor:
    """The regression target for white noise ``eps`` and its colored ``n``, shape of ``x0``."""
    check_prediction(prediction)
    a, s = (proc.expand(c, x0) for c in proc.alpha_sigma(t)) if prediction == "v" else (None, None)
    return _target(prediction, x0, eps, n, a, s)


def _target(prediction: str, x0: torch.Tensor, eps: torch.Tensor, n: torch.Tensor, a: torch.Tensor | None,
            s: torch.Tensor | None) -> torch.Tensor:
    """``target`` given ``a = α_t``, ``s = σ_t`` broadcast against ``x0`` (read for ``v`` only)."""
    if prediction == "eps":
        return eps
    if prediction == "colored_eps":
        return n
    if prediction == "x0":
        return x0
    return a * n - s * x0


class Denoiser:
    """Wrap ``model(x_t, t) -> prediction`` as the denoiser ``D(x_t, t) = E[x_0 | x_t]``.

    Like EDM's preconditioning, this is kept apart from the architecture. ``clip`` clamps ``D``
    to ``[-clip, clip]`` (diffusers' ``clip_sample``): near ``t = 1`` an ε-prediction's error is
    amplified by ``σ_t / α_t`` (≈ 150 for the linear schedule), and data in ``[-1, 1]`` bound
    the posterior mean anyway. ``None`` leaves ``D`` as the network makes it.
    """

    check_prediction = staticmethod(check_prediction)
    to_denoised = staticmethod(to_denoised)  # the parametrisation's formulas (frequency_parametrization: per frequency)

    def __init__(self, model: Callable, proc: VPProcess, prediction: str = "eps", clip: float | None = None):
        if clip is not None and not clip > 0:
            raise ValueError(f"clip must be a positive bound or None, got {clip!r}")
        self.model, self.proc, self.prediction, self.clip = model, proc, self.check_prediction(prediction), clip

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        d = self.to_denoised(self.proc, self.prediction, self.model(x, t), x, t)
        return d if self.clip is None else d.clamp(-self.clip, self.clip)


def sample_time(n: int, proc: VPProcess, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Training times ``t ~ U[t_min, 1]``, shape ``(n,)``, float32."""
    u = torch.rand(n, generator=generator, device=device)
    return proc.t_min + (1 - proc.t_min) * u


def loss(model: Callable, proc: VPProcess, x0: torch.Tensor, prediction: str = "eps",
         generator: torch.Generator | None = None, t: torch.Tensor | None = None,
         omission: str = "noise_only", reduction: str = "mean") -> torch.Tensor:
    """The denoising objective ``E ‖model(x_t, t) - target‖²`` for a batch ``x0`` ``(B, C, *spatial)``.

    For ``eps`` the error is projected onto the support (off it ε never reaches ``x_t`` and is
    unlearnable). ``omission`` matters only when a band is outside the support (docs/method.md §7):
    ``"noise_only"`` masks the noise alone (the paper's literal form), ``"project"`` also removes
    the band from ``x0`` so that training inputs look like what samplers produce.
    ``reduction="none"`` gives one value per sample, shape ``(B,)``. The loss is float32 at least
    (float64 for float64 networks).
    """
    check_prediction(prediction)
    if omission not in OMISSIONS:
        raise ValueError(f"omission must be one of {OMISSIONS}, got {omission!r}")
    if omission == "project":
        x0 = proc.cov.project(x0)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if t is None:
        t = sample_time(x0.shape[0], proc, generator, x0.device)
    eps, n = proc.noise_like(x0, generator)
    a, s = (proc.expand(c, x0) for c in proc.alpha_sigma(t))
    x_t = a * x0 + s * n
    out, tgt = model(x_t, t), _target(prediction, x0, eps, n, a, s)
    if prediction == "eps" and not proc.cov.full_support:
        out, tgt = proc.cov.project(out - tgt), torch.zeros_like(tgt)
    out, tgt = (z.to(torch.promote_types(z.dtype, torch.float32)) for z in (out, tgt))  # bf16 → float32
    if reduction == "mean":  # one fused kernel (and one backward), not four: the mean of the per-sample means
        return F.mse_loss(out, tgt)
    return F.mse_loss(out, tgt, reduction="none").flatten(1).mean(1)
