"""The forward process ``q(x_t | x_0) = N(α_t x_0, σ_t² Σ)`` (docs/method.md §4)."""

from __future__ import annotations

import torch

from ..spectral import SpectralCovariance
from .schedules import get_schedule

NOISE_MODES = ("exact", "per_draw")
PER_DRAW_MAX_SPREAD = 1e15
"""``"per_draw"`` recovers ``ε = Σ^{+1/2} n`` in float32: its relative error grows like √spread (measured
on 64×64 power laws: 2e-3 at a spread of 2e13, 0.1–0.3 at 1e17, > 1 at 5e19), so larger spreads are refused."""


def draw_device(n: int, generator: torch.Generator | None, device):
    """Check a number of draws ``n >= 1``; the device to draw on (the generator's by default, else the CPU)."""
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    return device


class VPProcess:
    """Variance-preserving diffusion with spectral covariance ``Σ``, continuous ``t ∈ [0, 1]``.

    Args:
        cov: the noise covariance; ``spectral.isotropic`` gives standard diffusion.
        schedule: ``"linear"`` (continuous DDPM β) or ``"cosine"``.
        noise: ``"exact"`` draws ``Σ^{1/2} ε`` (Gaussian, the default every formula assumes);
            ``"per_draw"`` reproduces the paper: each colored noise field is divided by its own
            spatial standard deviation (per sample and channel, about its own mean, + 1e-8),
            band by band for a two-band mixture (``SpectralCovariance.per_draw``);
            it needs ``cov.spread <= PER_DRAW_MAX_SPREAD``.
        t_min: the smallest time used for training and sampling grids.

    Tensors ``x`` have shape ``(B, C, *spatial)`` = ``(B, *cov.shape)``; ``t`` has shape ``(B,)``.
    """

    def __init__(self, cov: SpectralCovariance, schedule: str = "linear", noise: str = "exact", t_min: float = 1e-3):
        if not isinstance(cov, SpectralCovariance):
            raise ValueError(f"cov must be a SpectralCovariance, got {type(cov).__name__}")
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        if not 0 < t_min < 1:
            raise ValueError(f"t_min must be in (0, 1), got {t_min}")
        if noise == "per_draw" and cov.spread > PER_DRAW_MAX_SPREAD:
            raise ValueError(f"noise 'per_draw' recovers the white noise through Σ^(-1/2) in float32, which needs the "
                             f"spectrum's spread (largest / smallest weight on the support) <= {PER_DRAW_MAX_SPREAD:.0e}; "
                             f"this one's is {cov.spread:.2e}: use noise 'exact', or a larger k0 or floor")
        self.cov = cov
        self.schedule = get_schedule(schedule)
        self.noise = noise
        self.t_min = float(t_min)

    def __repr__(self) -> str:
        return f"VPProcess({self.cov!r}, schedule={self.schedule.name!r}, noise={self.noise!r})"

    @property
    def shape(self) -> tuple[int, ...]:
        return self.cov.shape

    # ------------------------------------------------------------------ coefficients
    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """``λ_t = log(α_t² / σ_t²)``."""
        return self.schedule.log_snr(torch.as_tensor(t))

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.log_snr(t)).sqrt()

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(-self.log_snr(t)).sqrt()

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(α_t, σ_t)``, equal to ``alpha(t)`` and ``sigma(t)`` bit for bit, from one evaluation of ``λ_t``."""
        lam = self.log_snr(t)
        return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()

    def t_from_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        return self.schedule.t_from_log_snr(torch.as_tensor(lam))

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """``β(t) = g(t)²``; the SDE is ``dx = -½ β x dt + √β Σ^{1/2} dw``."""
        t = torch.as_tensor(t)
        return -torch.sigmoid(-self.log_snr(t)) * self.schedule.dlog_snr_dt(t)

    def expand(self, c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Broadcast per-sample coefficients ``(B,)`` (or a scalar) against ``x`` ``(B, C, *spatial)``."""
        c = torch.as_tensor(c, device=x.device, dtype=x.dtype)
        return c.reshape(-1, *([1] * (x.dim() - 1))) if c.dim() else c

    # ------------------------------------------------------------------ noise
    def noise_like(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """White ``ε`` and colored ``n = Σ^{1/2} ε`` (normalised per draw in ``"per_draw"`` mode).

        Returns a pair of tensors shaped like ``x``; on the support ``n = Σ^{1/2} ε`` holds in both modes.
        """
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if self.noise == "exact":
            return eps, self.cov.sqrt(eps)
        n = self.cov.per_draw(eps, generator)
        return self.cov.inv_sqrt(n) + (eps - self.cov.project(eps)), n

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``x_t = α_t x0 + σ_t Σ^{1/2} ε`` for white ``ε`` (drawn when not given)."""
        n = self.noise_like(x0, generator)[1] if eps is None else self.cov.sqrt(eps)
        a, s = self.alpha_sigma(t)
        return self.expand(a, x0) * x0 + self.expand(s, x0) * n

    def prior_sample(self, n: int, generator: torch.Generator | None = None, device=None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``x_1 ~ N(0, σ_1² Σ)``, shape ``(n, C, *spatial)`` (per-draw normalised in that mode)."""
        device = draw_device(n, generator, device)
        z = torch.empty((int(n), *self.shape), device=device, dtype=dtype)
        return self.sigma(torch.tensor(1.0, dtype=torch.float64)).item() * self.noise_like(z, generator)[1]

    def consistent(self, d: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Make a denoiser output exact off the support: there ``x_t = α_t x_0``, so ``E[x_0|x_t] = x_t / α_t``.

        The identity with full support. With a band outside the support this is what keeps every
        sampler's output free of content in that band whatever the network returns (docs/method.md §7).
        """
        if self.cov.full_support:
            return d
        return self.cov.project(d) + (x - self.cov.project(x)) / self.expand(self.alpha(t), x)
