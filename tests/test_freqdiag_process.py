"""The frequency-diagonal process (docs/method.md §11): its schemes against the papers' formulas, in float64."""

import math

import pytest
import torch

from freqdiag_oracles import FrequencyOracle
from oracles import power_law_power
from sagd import diffusion, spectral
from sagd.diffusion import frequency as fq

SHAPE = (1, 8, 8)
T64 = torch.float64


def tensor(t):
    return torch.tensor(t, dtype=T64)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("cov", [spectral.power_law(SHAPE, alpha=-1.0), spectral.band_stop(SHAPE, 0.2, 0.3)])
def test_sagd_is_the_vp_process(cov, schedule):
    vp = diffusion.VPProcess(cov, schedule=schedule)
    proc = fq.from_vp(vp)
    t = torch.tensor([0.0, 1e-3, 0.3, 0.9, 1.0], dtype=T64)
    a, s = proc.coefficients(t)
    torch.testing.assert_close(a, vp.alpha(t).view(-1, 1, 1, 1).expand_as(a), rtol=1e-14, atol=0)
    torch.testing.assert_close(s, vp.sigma(t).view(-1, 1, 1, 1) * cov.weights.sqrt(), rtol=1e-14, atol=0)
    f, g2 = proc.drift(0.37)
    beta = vp.beta(tensor(0.37))
    torch.testing.assert_close(f, (-0.5 * beta).expand_as(f), rtol=1e-13, atol=0)
    torch.testing.assert_close(g2, beta * cov.weights, rtol=1e-13, atol=0)  # dx = -½β x dt + √β Σ^{1/2} dw
    assert torch.equal(proc.support, cov.support)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, *SHAPE, generator=g, dtype=T64), torch.randn(3, *SHAPE, generator=g, dtype=T64)
    tb = torch.tensor([0.1, 0.5, 0.9], dtype=T64)
    torch.testing.assert_close(proc.q_sample(x0, tb, eps), vp.q_sample(x0, tb, eps), rtol=0, atol=1e-14)


def test_blurring_coefficients_are_the_published_ones():
    proc = fq.blurring(SHAPE)  # σ_B,max = 20, d_min = 0.001, the cosine schedule at log-SNR ±10
    b = math.atan(math.exp(-5))  # the listing's get_noise_scaling_cosine(t, logsnr_min=-10, logsnr_max=10)
    a_ = math.atan(math.exp(5)) - b
    for t in (0.0, 0.05, 0.4, 0.8, 1.0):
        a, s = proc.coefficients(tensor(t))
        lam = -2 * math.log(math.tan(a_ * t + b))
        assert lam == pytest.approx({0.0: 10.0, 1.0: -10.0}.get(t, lam), rel=1e-12)
        alpha, sigma = math.sqrt(1 / (1 + math.exp(-lam))), math.sqrt(1 / (1 + math.exp(lam)))
        tau = 0.5 * (20 * math.sin(math.pi * t / 2) ** 2) ** 2
        for i, j in ((0, 0), (1, 0), (2, 3), (4, 4), (7, 5)):
            k2 = min(i, 8 - i) ** 2 / 64 + min(j, 8 - j) ** 2 / 64
            d = (1 - 1e-3) * math.exp(-4 * math.pi**2 * k2 * tau) + 1e-3
            assert a[0, i, j].item() == pytest.approx(alpha * d, rel=1e-12)
        torch.testing.assert_close(s, torch.full_like(s, sigma), rtol=1e-12, atol=0)


def test_inverse_heat_coefficients():
    proc = fq.inverse_heat(SHAPE, sigma_blur_min=0.5, sigma_blur_max=20.0, noise=0.01)
    for t in (0.0, 0.3, 1.0):
        log_a, log_s = proc.log_coefficients(tensor(t))
        sigma_b = 0.5 ** (1 - t) * 20.0**t
        k2 = (1 / 8) ** 2 + (3 / 8) ** 2
        assert log_a[0, 1, 3].item() == pytest.approx(-4 * math.pi**2 * k2 * sigma_b**2 / 2, rel=1e-12)
        assert log_a[0, 0, 0].item() == 0  # the mean is never blurred away
        torch.testing.assert_close(log_s, torch.full_like(log_s, math.log(0.01)), rtol=1e-15, atol=0)
    mean, power = proc.prior()
    assert torch.equal(mean, torch.zeros(SHAPE, dtype=T64))
    torch.testing.assert_close(power, torch.full(SHAPE, 1e-4, dtype=T64), rtol=1e-14, atol=0)
    ts = proc.t_from_log_snr(proc.log_snr(torch.tensor([0.0, 0.25, 1.0], dtype=T64)))
    torch.testing.assert_close(ts, torch.tensor([0.0, 0.25, 1.0], dtype=T64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("make", [lambda: fq.blurring(SHAPE), lambda: fq.inverse_heat(SHAPE),
                                  lambda: fq.sagd(spectral.power_law(SHAPE, alpha=1.0), "cosine")])
def test_drift_against_central_differences(make):
    """``f = d log a/dt``, ``g² = ds²/dt - 2 f s²`` by forward-mode AD, against a second path: central differences
    (step 1e-5: truncation ~1e-10 relative) of the coefficients; every frequency's SNR falls (``g² ≥ 0``)."""
    proc = make()
    for t in (0.2, 0.5, 0.8):
        f, g2 = proc.drift(t)
        h = 1e-5
        (la1, ls1), (la0, ls0) = proc.log_coefficients(tensor(t + h)), proc.log_coefficients(tensor(t - h))
        s = proc.coefficients(tensor(t))[1]
        f_fd = (la1 - la0) / (2 * h)  # in log a: inverse heat's a underflows to 0 at high frequencies
        g2_fd = (torch.exp(2 * ls1) - torch.exp(2 * ls0)) / (2 * h) - 2 * f_fd * s**2
        torch.testing.assert_close(f, f_fd, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(g2, g2_fd, rtol=1e-6, atol=1e-12)
        assert (g2 >= 0).all()


def test_q_sample_matches_the_fft_oracle():
    proc = fq.blurring(SHAPE)
    oracle = FrequencyOracle(proc, power_law_power(SHAPE, -2.0, 0.3))
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, *SHAPE, generator=g, dtype=T64), torch.randn(2, *SHAPE, generator=g, dtype=T64)
    a, s = proc.coefficients(tensor(0.3))
    want = torch.fft.ifftn(a * torch.fft.fftn(x0, dim=(2, 3), norm="ortho") + s * torch.fft.fftn(eps, dim=(2, 3),
                           norm="ortho"), dim=(2, 3), norm="ortho").real
    torch.testing.assert_close(proc.q_sample(x0, tensor(0.3), eps), want, rtol=0, atol=1e-14)
    mean, power = oracle.marginal(1.0)
    torch.testing.assert_close(proc.with_prior(mean, power).prior()[1], power, rtol=0, atol=0)


def test_consistent_off_the_support():
    cov = spectral.band_stop(SHAPE, 0.2, 0.3)
    proc = fq.sagd(cov)
    x = torch.randn(2, *SHAPE, dtype=T64)
    d = proc.consistent(torch.randn(2, *SHAPE, dtype=T64), x, torch.full((2,), 0.4, dtype=T64))
    a = proc.coefficients(tensor(0.4))[0][0, 0, 0].item()
    torch.testing.assert_close((~cov.support) * torch.fft.fftn(d, dim=(2, 3)),
                               (~cov.support) * torch.fft.fftn(x / a, dim=(2, 3)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda: fq.FrequencyProcess(SHAPE, "blur", diffusion.LinearSchedule()), "log_coefficients must be a callable"),
    (lambda: fq.FrequencyProcess(SHAPE, lambda t: (0 * t, 0 * t), object()), "schedule must have log_snr"),
    (lambda: fq.FrequencyProcess(SHAPE, lambda t: (0 * t, 0 * t), diffusion.LinearSchedule(), t_min=0),
     "t_min must be in"),
    (lambda: fq.FrequencyProcess(SHAPE, lambda t: (torch.arange(64.0).view(1, 8, 8) * t, 0 * t),
                                 diffusion.LinearSchedule()), "must be even in k"),
    (lambda: fq.FrequencyProcess(SHAPE, lambda t: (0 * t, math.nan * t), diffusion.LinearSchedule()),
     "finite log a_t"),
    (lambda: fq.FrequencyProcess(SHAPE, lambda t: (0 * t, torch.where(t < 0.5, 0.0, -math.inf) + 0 * t),
                                 diffusion.LinearSchedule()), "same frequencies"),
    (lambda: fq.FrequencyProcess(SHAPE, lambda t: (0 * t, torch.where(torch.arange(8) == 0, -math.inf, 0.0) + 0 * t),
                                 None), "schedule None averages every frequency's log-SNR"),
    (lambda: fq.blurring(SHAPE, min_scale=1.5), "min_scale must be in"),
    (lambda: fq.blurring(SHAPE, sigma_blur_max=-1), "sigma_blur_max must be a finite number > 0"),
    (lambda: fq.inverse_heat(SHAPE, sigma_blur_min=2, sigma_blur_max=1), "sigma_blur_max must be > sigma_blur_min"),
    (lambda: fq.inverse_heat(SHAPE, noise="x"), "noise must be a number"),
    (lambda: fq.from_vp(diffusion.VPProcess(spectral.isotropic(SHAPE), noise="per_draw")), "only noise='exact'"),
    (lambda: fq.sagd("isotropic"), "cov must be a SpectralCovariance"),
    (lambda: fq.blurring(SHAPE).with_prior(torch.zeros(1, 4, 4), torch.ones(1, 4, 4)), "prior mean and power"),
    (lambda: fq.blurring(SHAPE).with_prior(torch.zeros(SHAPE), -torch.ones(SHAPE)), "prior power must be"),
    (lambda: fq.blurring(SHAPE).prior_sample(0), "n must be >= 1"),
])
def test_bad_process_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
