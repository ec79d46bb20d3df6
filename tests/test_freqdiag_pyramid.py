"""Pyramid noise (``spectral.pyramid``): its expected spectrum from the recipe's covariance matrix, in float64."""

import math

import pytest
import torch

from sagd import spectral


def upsampling_matrix(spatial, r):
    """The nearest-neighbour upsampling ``U`` ``(N, N / r^ndim)`` of a grid ``spatial``, built index by index."""
    coarse = [s // r for s in spatial]
    fine = torch.cartesian_prod(*[torch.arange(s) for s in spatial]).reshape(-1, len(spatial))
    idx = torch.zeros(len(fine), dtype=torch.long)
    for axis, c in enumerate(coarse):
        idx = idx * c + fine[:, axis] // r
    u = torch.zeros(len(fine), math.prod(coarse), dtype=torch.float64)
    u[torch.arange(len(fine)), idx] = 1.0
    return u


def dft_matrix(spatial):
    """The orthonormal DFT over ``spatial`` as a dense ``(N, N)`` matrix (row-major flattening)."""
    out = torch.ones(1, 1, dtype=torch.complex128)
    for n in spatial:
        k = torch.arange(n, dtype=torch.float64)
        f = torch.exp(-2j * math.pi * torch.outer(k, k) / n) / math.sqrt(n)
        out = torch.kron(out, f)
    return out


def recipe_covariance(spatial, discount, levels):
    return sum(discount ** (2 * i) * upsampling_matrix(spatial, 2**i) @ upsampling_matrix(spatial, 2**i).T
               for i in range(levels)).to(torch.complex128)


@pytest.mark.parametrize("spatial, discount, levels", [((16,), 0.8, 4), ((8, 8), 0.5, 3), ((4, 8), 0.9, 2),
                                                       ((28, 4), 0.7, 3)])
def test_expected_spectrum_is_the_recipes(spatial, discount, levels):
    """``diag(F C Fᴴ)`` of the recipe's covariance ``C = Σ_i d^{2i} U_i U_iᵀ``, a dense second path, is the profile."""
    f = dft_matrix(spatial)
    spectrum = torch.diagonal(f @ recipe_covariance(spatial, discount, levels) @ f.conj().T)
    assert spectrum.imag.abs().max() < 1e-12
    want = spectrum.real / spectrum.real.mean()
    got = spectral.pyramid((1, *spatial), discount, levels).weights.flatten()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_the_recipe_is_not_stationary():
    """In Fourier its covariance couples ``k`` with its aliases ``k + m N/r``, and with nothing else."""
    spatial, levels = (16,), 3
    f = dft_matrix(spatial)
    c = f @ recipe_covariance(spatial, 0.8, levels) @ f.conj().T
    off = c - torch.diag(torch.diagonal(c))
    k = torch.arange(16)
    alias = ((k[:, None] - k[None, :]) % (16 // 2**(levels - 1)) == 0) & (k[:, None] != k[None, :])
    assert off.abs()[alias].max() > 0.1 * torch.diagonal(c).real.mean()  # far from diagonal
    assert off.abs()[~alias].max() < 1e-12


def test_draws_have_the_expected_spectrum():
    shape, n = (1, 8, 8), 4000
    x = spectral.pyramid_noise(n, shape, 0.8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = spectral.pyramid(shape, 0.8, 3).weights
    z = (spectral.power_spectrum(x) / w - 1) * math.sqrt(n / 2)  # χ² with ≥ 1 degree of freedom: std ≤ √(2/n)
    assert z.abs().max() < 4.5, z.abs().max()
    assert x.var().item() == pytest.approx(1.0, abs=0.03)


def test_spec_string_and_defaults():
    shape = (2, 28, 28)
    cov = spectral.from_spec("pyramid:discount=0.7,levels=2", shape)
    torch.testing.assert_close(cov.weights, spectral.pyramid(shape, 0.7, 2).weights, rtol=0, atol=0)
    assert torch.equal(spectral.pyramid(shape).weights, spectral.pyramid(shape, 0.8, 3).weights)  # 4 | 28, 8 ∤ 28
    assert torch.equal(spectral.pyramid((1, 8, 8), 0.0).weights, torch.ones(1, 8, 8, dtype=torch.float64))
    assert spectral.pyramid((1, 32, 32)).weights[0, 0, 0] > 30  # its last level (1 × 1) is offset noise


@pytest.mark.parametrize("kwargs, match", [
    (dict(levels=4), "levels must be a whole number in \\[1, 3\\]"),
    (dict(levels=1.5), "levels must be a whole number"),
    (dict(levels="x"), "levels must be a whole number"),
    (dict(discount=-0.1), "discount must be a finite number >= 0"),
    (dict(discount="x"), "discount must be a number"),
])
def test_bad_pyramid_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spectral.pyramid((1, 28, 28), **kwargs)
    with pytest.raises(ValueError, match="unknown key"):
        spectral.from_spec("pyramid:alpha=1", (1, 28, 28))
