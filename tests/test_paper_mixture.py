"""The paper's two-band mixture and band corruption, written out independently in numpy (draw,
normalise each band about its own mean, mix) and compared with ``two_band``, ``omission``,
``VPProcess(noise="per_draw")`` and ``corrupt_band``."""

import numpy as np
import pytest
import torch

from sagd import diffusion, spectral
from sagd.data import corrupt_band


def paper_band_noise(rng, n, size, lo, hi, edges="closed"):
    """White noise masked to the radial band in Nyquist units, divided by its own std (numpy)."""
    k = np.fft.fftfreq(size)
    r = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2) / 0.5
    mask = (r >= lo) & (r <= hi) if edges == "closed" else edges(r)
    e = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, size, size))) * mask))
    return e / (e.std(axis=(1, 2), keepdims=True) + 1e-8)


def power(x):
    """Per-frequency power in the orthonormal DFT, averaged over draws."""
    return (np.abs(np.fft.fft2(x, norm="ortho")) ** 2).mean(0)


def test_two_band_weights_are_the_papers_mixture_frequency_by_frequency():
    rng = np.random.default_rng(0)
    size, n = 32, 20000
    mix = 0.5 * paper_band_noise(rng, n, size, 0, 0.1) + 0.5 * paper_band_noise(rng, n, size, 0.2, 1.0)
    w = spectral.two_band((1, size, size), (0, 0.1), (0.2, 1.0), normalize=False).weights[0].numpy()
    p = power(mix)
    assert w[0, 1] == pytest.approx(32.0)  # γ² N / (count - 1): 0.25 · 1024 / 8
    assert w[0, 0] == pytest.approx(0.25 * 1024 / 6)  # DC outside the divisor: N / (m - 2)
    on = w > 0
    assert ((p > 1e-12) == on).all()
    # Monte Carlo: each bin's power is a mean of 20000 draws (relative s.e. ≤ 1/√10000 on complex bins)
    rel = np.abs(p[on] / w[on] - 1)
    assert rel.max() < 0.06 and rel.mean() < 0.015
    assert p[0, 0] / w[0, 0] == pytest.approx(1, abs=0.05)


def test_per_draw_keeps_the_papers_energy_and_normalises_each_band():
    size = 32
    for low, high, gl, gh in ((0.1, 0.2, 0.5, 0.5), (0.4, 0.5, 0.5, 0.5), (0.3, 0.6, 0.3, 0.8)):
        cov = spectral.two_band((1, size, size), (0, low), (high, 1), gl, gh, normalize=False)
        proc = diffusion.VPProcess(cov, noise="per_draw")
        g = torch.Generator().manual_seed(1)
        eps, n = proc.noise_like(torch.zeros(4000, 1, size, size, dtype=torch.float64), g)
        # about its own mean, each band has variance exactly 1 per draw: the mixture γ_l² + γ_h²
        var = n.var(dim=(2, 3), unbiased=False)
        assert var.mean().item() == pytest.approx(gl**2 + gh**2, rel=0.02)
        # white eps and colored noise agree on the support
        assert torch.allclose(cov.sqrt(eps), n, atol=1e-8)
        # each band alone is normalised per draw: project onto one band's mask and check its std
        (mask_l, a_l), (mask_h, a_h) = cov.components
        low_part = torch.fft.ifft2(torch.fft.fft2(n) * mask_l[0]).real
        assert torch.allclose(low_part.std(dim=(2, 3), unbiased=False), torch.full_like(var, a_l[0].item()), rtol=1e-6)
        p = power(n[:, 0].numpy())
        w = cov.weights[0].numpy()
        on = w > 0
        assert np.abs(p[on] / w[on] - 1).mean() < 0.03


def test_normalized_two_band_per_draw_matches_its_weights():
    size = 16
    cov = spectral.two_band((1, size, size), (0, 0.3), (0.5, 1))
    proc = diffusion.VPProcess(cov, noise="per_draw")
    _, n = proc.noise_like(torch.zeros(20000, 1, size, size, dtype=torch.float64), torch.Generator().manual_seed(2))
    p, w = power(n[:, 0].numpy()), cov.weights[0].numpy()
    assert w.mean() == pytest.approx(1.0)
    on = w > 0
    assert np.abs(p[on] / w[on] - 1).mean() < 0.02 and (p[~on] < 1e-20).all()


def test_omission_is_the_exact_complement_of_the_corruption_band():
    size = 32
    r = spectral.radial_frequency((size, size), unit="nyquist")
    for low, high in ((0.1, 0.2), (0.4, 0.5), (0.5, 0.6), (0.8, 0.9)):
        cov = spectral.omission((1, size, size), low, high, normalize=False)
        x = torch.zeros(64, 1, size, size, dtype=torch.float64)
        e = corrupt_band(x, low, high, generator=torch.Generator().manual_seed(3))
        corrupted = (torch.fft.fft2(e).abs() ** 2).mean(0)[0] > 1e-12
        assert (corrupted == ((r >= low) & (r <= high))).all()
        assert (cov.support[0] == ~corrupted).all()  # nothing both corrupted and noised, nothing in neither
    # the paper's literal closed bands share the r = 0.5 Nyquist ring with a [0.4, 0.5] corruption
    literal = spectral.two_band((1, size, size), (0, 0.4), (0.5, 1))
    assert (literal.support[0] & (r == 0.5)).sum() == 4


def test_corrupt_band_matches_the_papers_procedure():
    size, n = 32, 20000
    x = torch.zeros(n, 1, size, size, dtype=torch.float64)
    ours = corrupt_band(x, 0.1, 0.2, gamma=1.0, generator=torch.Generator().manual_seed(4))[:, 0].numpy()
    paper = paper_band_noise(np.random.default_rng(5), n, size, 0.1, 0.2)
    on = power(paper) > 1e-12
    assert ((power(ours) > 1e-12) == on).all()
    assert np.abs(power(ours)[on] / power(paper)[on] - 1).mean() < 0.03


def test_mixture_refuses_bands_whose_normalisation_is_undefined():
    with pytest.raises(ValueError, match="no frequency but DC"):
        spectral.two_band((1, 32, 32), (0, 0.01), (0.5, 1))
    with pytest.raises(ValueError, match="infinite DC variance"):
        spectral.two_band((1, 8), (0, 0.25), (0.5, 1))  # 1-D: DC and k = ±1/8 only
