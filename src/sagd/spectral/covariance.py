"""``SpectralCovariance``: a covariance that is diagonal in the Fourier basis (docs/method.md §2).

``Σ = Fᴴ diag(w) F`` with ``F`` the orthonormal DFT over the spatial axes, per channel. Every
operator is one ``rfftn``, a multiplication by a function of ``w`` on the half grid, and one
``irfftn``: O(d log d), no matrices. Because ``w(k) = w(-k)`` the half-grid product is exactly
the full-grid one and the result is real.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .grid import check_shape, negate_frequencies

_FFT_DTYPES = (torch.float32, torch.float64)


class SpectralCovariance:
    """A spectral covariance over samples of shape ``(C, *spatial)``.

    Args:
        weights: ``w(k) >= 0`` on the full frequency grid, shape ``(C, *spatial)``; finite, even
            in ``k``, not all zero in any channel.
        normalize: rescale every channel to mean weight 1 (``tr Σ = d``, the total noise power of
            isotropic diffusion). ``False`` keeps the weights as given (reproduction of the
            paper's two-band energy confound, docs/method.md §10).
        components: how the paper draws this noise, for ``VPProcess(noise="per_draw")``: pairs
            ``(mask, amplitude)`` with ``mask`` ``(C, *spatial)`` in {0, 1} and ``amplitude`` ``(C,)``;
            a draw is ``Σ_b amplitude_b · f_b / std(f_b)`` with ``f_b`` white noise restricted to
            ``mask_b``. ``None`` (every profile but ``two_band``) is one field ``Σ^{1/2} ε``
            divided by its own std. ``normalize`` rescales the amplitudes with the weights.

    Operators act on tensors of shape ``(..., C, *spatial)`` and keep their dtype and device. Where
    ``Σ = I`` (``identity``: every weight 1, isotropic diffusion) they return their input itself, no FFT,
    as ``project`` does with full support.
    """

    def __init__(self, weights: torch.Tensor, normalize: bool = True, components=None):
        w = torch.as_tensor(weights).detach().to(device="cpu", dtype=torch.float64).clone()
        check_shape(w.shape, "weights.shape")
        if not torch.isfinite(w).all():
            raise ValueError("weights must be finite (no NaN or inf)")
        if (w < 0).any():
            raise ValueError(f"weights must be >= 0, got a minimum of {w.min().item():.3g}")
        ndim = w.dim() - 1
        per_channel = w.flatten(1).sum(1)
        if (per_channel <= 0).any():
            bad = int(torch.nonzero(per_channel <= 0)[0])
            raise ValueError(f"weights are all zero in channel {bad}: the covariance would remove every frequency")
        mirrored = negate_frequencies(w, ndim)
        if not torch.allclose(w, mirrored, rtol=1e-6, atol=1e-12 * float(w.abs().max())):
            raise ValueError("weights must be even in k (w(k) = w(-k)) for Σ to be real and symmetric")
        w = 0.5 * (w + mirrored)
        scale = 1 / w.flatten(1).mean(1) if normalize else torch.ones(w.shape[0], dtype=torch.float64)
        w = w * scale.view(-1, *([1] * ndim))
        self._w = w
        self._components = None if components is None else tuple(
            (torch.as_tensor(m, dtype=torch.float64).expand(w.shape).clone(),
             torch.as_tensor(a, dtype=torch.float64).expand(w.shape[0]) * scale.sqrt())
            for m, a in components)
        if self._components is not None and any(((m > 0) & (w == 0)).any() for m, _ in self._components):
            raise ValueError("components must lie inside the support of the weights")
        self._rank = int((w > 0).sum())
        self._identity = bool((w == 1).all())
        self._cache: dict = {}

    # ------------------------------------------------------------------ description
    @property
    def weights(self) -> torch.Tensor:
        """``w(k)`` on the full grid, shape ``(C, *spatial)``, float64 (mean 1 per channel when normalised)."""
        return self._w.clone()

    @property
    def shape(self) -> tuple[int, ...]:
        """The sample shape ``(C, *spatial)``."""
        return tuple(self._w.shape)

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def dim(self) -> int:
        """``d``, the number of scalars in one sample."""
        return self._w.numel()

    @property
    def support(self) -> torch.Tensor:
        """``w(k) > 0`` on the full grid, bool, shape ``(C, *spatial)``."""
        return self._w > 0

    @property
    def rank(self) -> int:
        """The dimension of the support (``d`` when every frequency is noised)."""
        return self._rank

    @property
    def identity(self) -> bool:
        """Whether ``Σ = I`` exactly (every weight 1): every operator is then the identity."""
        return self._identity

    @property
    def full_support(self) -> bool:
        return self.rank == self.dim

    @property
    def spread(self) -> float:
        """``max w / min w`` over the support: the condition number of ``Σ`` restricted to it."""
        w = self._w[self._w > 0]
        return float(w.max() / w.min())

    def logdet(self) -> torch.Tensor:
        """``log det Σ = Σ_k log w(k)`` over the support (float64 scalar).

        With full support this is the log-determinant; otherwise it is the log
        pseudo-determinant, the one the density on the support uses (docs/method.md §8).
        """
        w = self._w
        return torch.log(w[w > 0]).sum()

    # ------------------------------------------------------------------ operators
    def _half(self, power: float, device, dtype, component: int | None = None) -> torch.Tensor:
        """``w^power`` on the rfft half grid (0 off the support), cached per device and dtype;
        with ``component``, that component's mask instead of ``w``."""
        key = (power, str(device), dtype, component)
        if key not in self._cache:
            w = self._w if component is None else self._components[component][0]
            w = w[..., : self.spatial[-1] // 2 + 1]
            h = torch.where(w > 0, w.clamp_min(torch.finfo(torch.float64).tiny) ** power, torch.zeros_like(w))
            self._cache[key] = h.to(device=device, dtype=dtype)
        return self._cache[key]

    def _filter(self, x: torch.Tensor, power: float, component: int | None = None) -> torch.Tensor:
        self._check(x)
        if self._identity and component is None:
            return x
        dtype = x.dtype if x.dtype in _FFT_DTYPES else torch.float32
        dims = tuple(range(-len(self.spatial), 0))
        xf = torch.fft.rfftn(x.to(dtype), dim=dims, norm="ortho")
        xf = xf * self._half(power, x.device, dtype, component)
        return torch.fft.irfftn(xf, s=self.spatial, dim=dims, norm="ortho").to(x.dtype)

    def _check(self, x: torch.Tensor) -> None:
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got {type(x).__name__} {getattr(x, 'dtype', '')}")
        if tuple(x.shape[-len(self.shape):]) != self.shape:
            raise ValueError(f"x must have trailing shape {self.shape} (C, *spatial), got {tuple(x.shape)}")

    def sqrt(self, x: torch.Tensor) -> torch.Tensor:
        """``Σ^{1/2} x`` for ``x`` of shape ``(..., C, *spatial)``."""
        return self._filter(x, 0.5)

    def inv_sqrt(self, x: torch.Tensor) -> torch.Tensor:
        """``Σ^{+1/2} x``: the pseudo-inverse square root (``1/√w`` on the support, 0 elsewhere)."""
        return self._filter(x, -0.5)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``Σ x``."""
        return self._filter(x, 1.0)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Orthogonal projection of ``x`` onto the support (the identity with full support)."""
        return x if self.full_support else self._filter(x, 0.0)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device=None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """``n`` draws of ``N(0, Σ)``, shape ``(n, C, *spatial)``.

        The device defaults to the generator's device (CPU without one).
        """
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if device is None:
            device = generator.device if generator is not None else "cpu"
        z = torch.randn((int(n), *self.shape), generator=generator, device=device, dtype=dtype)
        return self.sqrt(z)

    def per_draw(self, eps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The paper's noise from white ``eps`` ``(B, C, *spatial)``: each component's field divided
        by its own spatial std (about its mean, per sample and channel, + 1e-8), then mixed. The
        first component filters ``eps``; later ones filter fresh white noise from ``generator``.

        One component (every profile but ``two_band``): ``Σ^{1/2} ε / std``. ``two_band``
        normalises each band, then mixes with ``γ_l, γ_h`` (docs/method.md §10), so its energy confound
        survives. In expectation the per-frequency variance of the result is ``w`` exactly for
        ``two_band`` and close to ``w`` (up to the DC bin) for the others.
        """
        dims = tuple(range(2, eps.dim()))
        if self._components is None:
            n = self.sqrt(eps)
            return n / (n.std(dim=dims, keepdim=True, unbiased=False) + 1e-8)
        out = torch.zeros_like(eps)
        for i, (_, amplitude) in enumerate(self._components):
            white = eps if i == 0 else torch.randn(eps.shape, generator=generator, device=eps.device, dtype=eps.dtype)
            f = self._filter(white, 0.0, component=i)
            a = amplitude.to(device=eps.device, dtype=eps.dtype).view(-1, *([1] * len(self.spatial)))
            out = out + a * f / (f.std(dim=dims, keepdim=True, unbiased=False) + 1e-8)
        return out

    # ------------------------------------------------------------------ composition
    def __mul__(self, other: "SpectralCovariance") -> "SpectralCovariance":
        """Compose two spectra: multiply the weights, renormalise to mean 1 (drawn as one field)."""
        if not isinstance(other, SpectralCovariance):
            return NotImplemented
        if other.shape != self.shape:
            raise ValueError(f"cannot compose covariances of shapes {self.shape} and {other.shape}")
        w = self._w * other._w
        if (w.flatten(1).sum(1) <= 0).any():
            raise ValueError("the product of these spectra removes every frequency of a channel")
        return SpectralCovariance(w)

    def __repr__(self) -> str:
        w = self._w
        return (
            f"SpectralCovariance(shape={self.shape}, min={w.min().item():.3g}, max={w.max().item():.3g}, "
            f"support={self.rank}/{self.dim})"
        )

    @property
    def components(self):
        """The per-draw components ``((mask, amplitude), ...)``, or ``None`` for one field (see ``__init__``)."""
        return None if self._components is None else tuple((m.clone(), a.clone()) for m, a in self._components)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights and per-draw components, for saving with a checkpoint (float64)."""
        state = {"weights": self.weights}
        for i, (mask, amplitude) in enumerate(self._components or ()):
            state[f"components.{i}.mask"], state[f"components.{i}.amplitude"] = mask.clone(), amplitude.clone()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "SpectralCovariance":
        n = len([k for k in state if k.endswith(".mask")])
        components = [(state[f"components.{i}.mask"], state[f"components.{i}.amplitude"]) for i in range(n)]
        return cls(state["weights"], normalize=False, components=components or None)
