"""Noise schedules in continuous time ``t ∈ [0, 1]`` for the VP process (docs/method.md §4).

A schedule is a log-SNR function ``λ(t) = log(α_t² / σ_t²)``, decreasing in ``t``, with its
inverse and derivative. ``α_t² = sigmoid(λ)``, ``σ_t² = sigmoid(-λ)``.
"""

from __future__ import annotations

import math

import torch


class LinearSchedule:
    """The continuous limit of DDPM's linear β (1e-4 … 0.02 over 1000 steps).

    ``β(t) = β_min + t (β_max - β_min)`` with ``β_min = 0.1``, ``β_max = 20``;
    ``log α_t = -¼ t² (β_max - β_min) - ½ t β_min``.
    """

    name = "linear"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        if not 0 < beta_min < beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got beta_min={beta_min}, beta_max={beta_max}")
        self.beta_min, self.beta_max = beta_min, beta_max

    def _log_alpha2(self, t):
        return -(0.5 * t**2 * (self.beta_max - self.beta_min) + t * self.beta_min)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        la2 = self._log_alpha2(t)
        return la2 - torch.log(-torch.expm1(la2))

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        # -log α² = log(1 + e^{-λ}) = ½ t² Δβ + t β_min: solve the quadratic for t >= 0.
        c = torch.nn.functional.softplus(-lam)
        db = self.beta_max - self.beta_min
        return 2 * c / (self.beta_min + torch.sqrt(self.beta_min**2 + 2 * db * c))

    def dlog_snr_dt(self, t: torch.Tensor) -> torch.Tensor:
        beta = self.beta_min + t * (self.beta_max - self.beta_min)
        la2 = self._log_alpha2(t)
        # λ = log α² - log(1 - α²);  dλ/dt = -β (1 + α² / (1 - α²)) = -β / σ².
        return -beta / (-torch.expm1(la2))


class CosineSchedule:
    """The cosine schedule (Nichol & Dhariwal), ``α_t = cos(π t / 2)`` up to the ends.

    Written in log-SNR, ``λ(t) = -2 log tan(a t + b)``, with ``a, b`` chosen so that ``λ``
    runs from ``logsnr_max`` at ``t = 0`` to ``logsnr_min`` at ``t = 1`` (±15 by default),
    which keeps every step finite where the plain cosine reaches ``α = 0``.
    """

    name = "cosine"

    def __init__(self, logsnr_min: float = -15.0, logsnr_max: float = 15.0):
        if not logsnr_min < logsnr_max:
            raise ValueError(f"need logsnr_min < logsnr_max, got {logsnr_min}, {logsnr_max}")
        self.b = math.atan(math.exp(-0.5 * logsnr_max))
        self.a = math.atan(math.exp(-0.5 * logsnr_min)) - self.b

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return -2 * torch.log(torch.tan(self.a * t + self.b))

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        return (torch.atan(torch.exp(-0.5 * lam)) - self.b) / self.a

    def dlog_snr_dt(self, t: torch.Tensor) -> torch.Tensor:
        return -4 * self.a / torch.sin(2 * (self.a * t + self.b))


SCHEDULES = {"linear": LinearSchedule, "cosine": CosineSchedule}


def get_schedule(name: str):
    if isinstance(name, (LinearSchedule, CosineSchedule)):
        return name
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name]()
