"""The exact law of every sampler on Gaussian data (``sagd.diffusion.exact``) against Monte Carlo and theory."""

import math

import pytest
import torch

from oracles import GaussianOracle, power_law_power, spectrum
from sagd import diffusion, spectral
from sagd.diffusion import exact

SHAPE = (1, 8, 8)
POWER = power_law_power(SHAPE, -2.0, scale=0.3)
SPECTRA = {
    "isotropic": lambda: spectral.isotropic(SHAPE),
    "red": lambda: spectral.power_law(SHAPE, alpha=-1.0),
    "blue": lambda: spectral.power_law(SHAPE, alpha=1.0),
    "band_stop": lambda: spectral.band_stop(SHAPE, 0.2, 0.3),
}


def mean_pattern():
    h = torch.arange(SHAPE[1], dtype=torch.float64)
    return 0.3 * torch.cos(2 * torch.pi * h / SHAPE[1]).view(1, -1, 1).expand(SHAPE).clone()


def self_conjugate():
    k = torch.arange(SHAPE[1])
    on = (2 * k) % SHAPE[1] == 0
    return (on.view(-1, 1) & on.view(1, -1)).unsqueeze(0)


@pytest.mark.parametrize("method", diffusion.METHODS)
def test_exact_law_matches_monte_carlo(method):
    """Few steps, so the law is far from the data's: Monte Carlo must find the evaluator's law, not the data's."""
    cov = spectral.power_law(SHAPE, alpha=-1.0)
    proc = diffusion.VPProcess(cov)
    oracle = GaussianOracle(proc, POWER, mean_pattern())  # tests/oracles.py: an independent FFT implementation
    law = exact.sample_law(exact.GaussianData(POWER, mean_pattern()), proc, method, steps=3)
    n = 4000
    x = diffusion.sample(oracle.denoiser, proc, n, method=method, steps=3, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    assert law.nfe == diffusion.nfe(method, 3)
    # each Monte Carlo power is a mean of n exponential (χ²₁ on self-conjugate k) draws about the true power
    z = (spectrum(x - x.mean(0)) / law.power - 1) * math.sqrt(n) / torch.where(self_conjugate(), math.sqrt(2), 1.0)
    assert z.abs().max() < 4.5, z.abs().max()
    assert abs(z.mean()) < 4.5 / math.sqrt(z.numel())
    zm = (x.mean(0) - law.mean) / (x.var(0).sqrt() / math.sqrt(n))
    assert zm.abs().max() < 4.5
    far = (law.power / POWER).log().abs().mean()
    assert far > 20 / math.sqrt(n)  # the law differs from the data far beyond the sampling noise


@pytest.mark.parametrize("method", ["ddim", "dpmpp_3m", "dpmpp_2m_sde"])
def test_denoiser_error_model_matches_monte_carlo(method):
    """``eps_error``: a denoiser whose ε-prediction errs by white noise of that size at every call."""
    cov = spectral.power_law(SHAPE, alpha=-1.0)
    proc = diffusion.VPProcess(cov)
    oracle = GaussianOracle(proc, POWER)
    g = torch.Generator().manual_seed(1)

    def noisy(x, t):
        a, s = oracle.coefficients(float(t[0]))
        e = torch.randn(x.shape, generator=g, dtype=x.dtype)
        return oracle.denoiser(x, t) - (s / a) * 0.05 * cov.sqrt(e)

    data = exact.GaussianData(POWER)
    law = exact.sample_law(data, proc, method, steps=6, eps_error=0.05)
    assert law.nfe == 6
    n = 4000
    x = diffusion.sample(noisy, proc, n, method=method, steps=6, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    z = (spectrum(x) / law.power - 1) * math.sqrt(n) / torch.where(self_conjugate(), math.sqrt(2), 1.0)
    assert z.abs().max() < 4.5, z.abs().max()
    clean = exact.sample_law(data, proc, method, steps=6)
    assert ((law.power / clean.power).log().abs().mean()) > 10 / math.sqrt(n)  # the error model is visible


# (steps, expected order p of the noise-free error as steps double, bound on the error at 2 × steps)
ORDERS = {
    "ddpm": (50, 0.8, 0.17),
    "ddim": (50, 0.95, 0.1),
    "euler_maruyama": (50, 1.0, 0.041),
    "heun": (25, 2.0, 0.011),
    "dpmpp_2m": (50, 1.95, 0.0012),
    "dpmpp_3m": (25, 3.5, 2e-4),
    "dpmpp_2m_sde": (50, 2.0, 0.0028),
}


@pytest.mark.parametrize("spectrum_name", SPECTRA)
@pytest.mark.parametrize("method", ORDERS)
def test_convergence_order(method, spectrum_name):
    """No sampling noise: the log-spectral error falls as ``steps^-p``, down to well below any Monte Carlo floor."""
    assert set(ORDERS) == set(diffusion.METHODS)
    cov = SPECTRA[spectrum_name]()
    proc = diffusion.VPProcess(cov)
    data = exact.GaussianData(POWER, mean_pattern() if spectrum_name != "band_stop" else None)
    steps, order, bound = ORDERS[method]
    e1, e2 = (exact.log_spectral_error(exact.sample_law(data, proc, method, s), data, cov.support)
              for s in (steps, 2 * steps))
    assert e2 < bound, (e1, e2)
    assert math.log2(e1 / e2) > order - 0.15, (e1, e2)


@pytest.mark.paths
def test_gaussian_data_denoiser_is_the_oracle():
    proc = diffusion.VPProcess(spectral.power_law(SHAPE, alpha=-1.0))
    oracle = GaussianOracle(proc, POWER, mean_pattern())
    x, t = torch.randn(5, *SHAPE, dtype=torch.float64), torch.full((5,), 0.3)
    d = exact.GaussianData(POWER, mean_pattern()).denoiser(proc)
    torch.testing.assert_close(d(x, t), oracle.denoiser(x, t))


def test_kl_and_errors_of_an_exact_law():
    data = exact.GaussianData(POWER, mean_pattern())
    same = exact.SampleLaw(data.mean.clone(), data.power.clone(), 0)
    assert exact.kl(same, data) == 0 and exact.log_spectral_error(same, data) == 0
    floor = exact.expected_monte_carlo_error(same, data, 3000)
    assert floor == pytest.approx(math.sqrt(2 / (math.pi * 3000)), rel=0.1)  # the sampling-noise floor
    wide = exact.SampleLaw(data.mean.clone(), 2 * data.power, 0)
    assert exact.kl(wide, data) == pytest.approx(0.5 * data.power.numel() * (0.5 - 1 + math.log(2)))
    assert exact.log_spectral_error(wide, data) == pytest.approx(math.log(2))


def test_gaussian_data_from_images():
    g = torch.Generator().manual_seed(0)
    oracle = GaussianOracle(diffusion.VPProcess(spectral.isotropic(SHAPE)), POWER, mean_pattern())
    data = exact.GaussianData.from_images(oracle.sample(8000, generator=g))
    torch.testing.assert_close(data.mean, mean_pattern(), atol=0.03, rtol=0)
    assert (data.power / POWER - 1).abs().max() < 0.1


@pytest.mark.parametrize("make, match", [
    (lambda: exact.GaussianData(torch.zeros(SHAPE)), "power must be a finite, positive tensor"),
    (lambda: exact.GaussianData(POWER, torch.zeros(1, 4, 4)), "mean must have the shape of power"),
    (lambda: exact.sample_law(exact.GaussianData(POWER), diffusion.VPProcess(spectral.isotropic(SHAPE),
                                                                             noise="per_draw"), "ddim"),
     "needs proc.noise='exact'"),
    (lambda: exact.sample_law(exact.GaussianData(POWER), diffusion.VPProcess(spectral.isotropic(SHAPE)), "plms"),
     "method must be one of"),
    (lambda: exact.sample_law(exact.GaussianData(power_law_power((1, 4, 4), -2.0)),
                              diffusion.VPProcess(spectral.isotropic(SHAPE)), "ddim"), "data has shape"),
])
def test_bad_exact_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
