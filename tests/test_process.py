"""The forward process, schedules, parametrisations and the training objective (docs/method.md §4–5)."""

import math

import pytest
import torch

from oracles import GaussianOracle, fft, power_law_power, spectrum
from sagd import diffusion, spectral
from sagd.diffusion.parametrization import target, to_denoised

SHAPE = (1, 8, 8)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_identities(schedule):
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE), schedule=schedule)
    t = torch.linspace(1e-3, 1, 101, dtype=torch.float64)
    a, s = proc.alpha(t), proc.sigma(t)
    torch.testing.assert_close(a**2 + s**2, torch.ones_like(t))
    assert (a[1:] < a[:-1]).all()
    torch.testing.assert_close(proc.t_from_log_snr(proc.log_snr(t)), t, rtol=1e-9, atol=1e-9)
    # β = -d log α² / dt, checked by central differences
    h = 1e-6
    fd = -(torch.log(proc.alpha(t[1:-1] + h) ** 2) - torch.log(proc.alpha(t[1:-1] - h) ** 2)) / (2 * h)
    torch.testing.assert_close(proc.beta(t[1:-1]), fd, rtol=1e-5, atol=1e-5)


def test_linear_schedule_is_ddpm_limit():
    """ᾱ of DDPM's 1000 discrete linear-β steps equals α(t)² at t = i/1000."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE))
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    torch.testing.assert_close(proc.alpha(t) ** 2, abar, rtol=2e-2, atol=1e-4)


@pytest.mark.parametrize("noise", ["exact", "per_draw"])
def test_q_sample_noise_spectrum(noise):
    cov = spectral.power_law(SHAPE, alpha=-1.0) * spectral.band_stop(SHAPE, 0.2, 0.3)
    proc = diffusion.VPProcess(cov, noise=noise)
    x0 = torch.randn(6000, *SHAPE, dtype=torch.float64)
    t = torch.full((6000,), 0.4, dtype=torch.float64)
    xt = proc.q_sample(x0, t, generator=torch.Generator().manual_seed(0))
    a, s = proc.alpha(t[0]), proc.sigma(t[0])
    noise_power = spectrum(xt - a * x0) / s**2
    assert noise_power[~cov.support].max() < 1e-20
    if noise == "exact":
        rel = (noise_power[cov.support] / cov.weights[cov.support] - 1).abs()
        assert rel.mean() < 0.03
    else:  # each draw has unit spatial std about its mean
        _, n = proc.noise_like(x0[:50], torch.Generator().manual_seed(1))
        torch.testing.assert_close(n.std(dim=(2, 3), unbiased=False), torch.ones(50, 1, dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_prior_is_colored():
    cov = spectral.power_law(SHAPE, alpha=1.0)
    proc = diffusion.VPProcess(cov)
    x = proc.prior_sample(8000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s1 = proc.sigma(torch.tensor(1.0, dtype=torch.float64))
    assert (spectrum(x) / (s1**2 * cov.weights) - 1).abs().mean() < 0.03


@pytest.mark.paths
@pytest.mark.parametrize("prediction", diffusion.PREDICTIONS)
def test_parametrisations_recover_the_exact_denoiser(prediction):
    """The optimal output of each parametrisation, built from the oracle D, maps back to D."""
    cov = spectral.power_law(SHAPE, alpha=-0.5) * spectral.band_stop(SHAPE, 0.2, 0.3)
    proc = diffusion.VPProcess(cov)
    oracle = GaussianOracle(proc, power_law_power(SHAPE, -2.0, 0.3))
    x0 = oracle.sample(16, torch.Generator().manual_seed(0))
    t = torch.full((16,), 0.3, dtype=torch.float64)
    x = proc.q_sample(x0, t, generator=torch.Generator().manual_seed(1))
    d = proc.consistent(oracle.denoiser(x, t), x, t)
    a, s = proc.alpha(t[0]), proc.sigma(t[0])
    n_hat = (x - a * d) / s
    out = {"eps": cov.inv_sqrt(n_hat), "colored_eps": n_hat, "x0": d, "v": a * n_hat - s * d}[prediction]
    torch.testing.assert_close(to_denoised(proc, prediction, out, x, t), d)
    den = diffusion.Denoiser(lambda x_, t_: out, proc, prediction)
    torch.testing.assert_close(den(x, t), d)


@pytest.mark.parametrize("prediction", diffusion.PREDICTIONS)
def test_targets_are_consistent(prediction):
    """Feeding the exact target back through to_denoised gives x0 exactly."""
    cov = spectral.power_law(SHAPE, alpha=1.0)
    proc = diffusion.VPProcess(cov)
    x0 = torch.randn(4, *SHAPE, dtype=torch.float64)
    t = torch.rand(4, dtype=torch.float64) * 0.9 + 0.05
    eps, n = proc.noise_like(x0, torch.Generator().manual_seed(0))
    x = proc.expand(proc.alpha(t), x0) * x0 + proc.expand(proc.sigma(t), x0) * n
    torch.testing.assert_close(to_denoised(proc, prediction, target(proc, prediction, x0, eps, n, t), x, t), x0)


def test_eps_loss_of_the_bayes_optimal_model_is_the_closed_form():
    """E‖ε̂* - ε‖² per frequency is α²P / (α²P + σ²w) on the support, 0 off it."""
    cov = spectral.power_law(SHAPE, alpha=-1.0) * spectral.band_stop(SHAPE, 0.2, 0.3)
    proc = diffusion.VPProcess(cov)
    power = power_law_power(SHAPE, -2.0, 0.3)
    oracle = GaussianOracle(proc, power)

    def optimal_eps(x, t):
        d = proc.consistent(oracle.denoiser(x, t), x, t)
        return cov.inv_sqrt((x - proc.expand(proc.alpha(t), x) * d) / proc.expand(proc.sigma(t), x))

    x0 = oracle.sample(20000, torch.Generator().manual_seed(0))
    t = torch.full((20000,), 0.35, dtype=torch.float64)
    got = diffusion.loss(optimal_eps, proc, x0, "eps", generator=torch.Generator().manual_seed(1), t=t)
    a2, s2 = proc.alpha(t[0]) ** 2, proc.sigma(t[0]) ** 2
    w = cov.weights
    expected = torch.where(w > 0, a2 * power / (a2 * power + s2 * w), torch.zeros_like(w)).mean()
    assert got.item() == pytest.approx(expected.item(), rel=0.02)
    worse = diffusion.loss(lambda x, t: optimal_eps(x, t) * 1.1, proc, x0, "eps",
                           generator=torch.Generator().manual_seed(1), t=t)
    assert worse > got


def test_loss_project_removes_the_band_from_data():
    cov = spectral.band_stop(SHAPE, 0.2, 0.3)
    proc = diffusion.VPProcess(cov)
    x0 = torch.randn(32, *SHAPE)
    seen = []
    model = lambda x, t: seen.append(x) or torch.zeros_like(x)
    diffusion.loss(model, proc, x0, "x0", omission="project", generator=torch.Generator().manual_seed(0))
    assert fft(seen[0].double()).abs()[:, ~cov.support].max() < 1e-5
    diffusion.loss(model, proc, x0, "x0", omission="noise_only", generator=torch.Generator().manual_seed(0))
    assert fft(seen[1].double()).abs()[:, ~cov.support].max() > 1e-2


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: diffusion.VPProcess(spectral.isotropic(SHAPE), schedule="sigmoid"), "schedule must be one of"),
        (lambda: diffusion.VPProcess(spectral.isotropic(SHAPE), noise="pink"), "noise must be one of"),
        (lambda: diffusion.VPProcess(torch.ones(SHAPE)), "cov must be a SpectralCovariance"),
        (lambda: diffusion.loss(lambda x, t: x, diffusion.VPProcess(spectral.isotropic(SHAPE)), torch.zeros(2, *SHAPE), "score"), "prediction must be one of"),
        (lambda: diffusion.VPProcess(spectral.isotropic(SHAPE)).prior_sample(0), "n must be >= 1"),
    ],
)
def test_bad_process_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_denoiser_clip():
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE))
    x = 5 * torch.randn(3, *SHAPE)
    t = torch.full((3,), 0.5)
    raw = diffusion.Denoiser(lambda x_, t_: x_, proc, "x0")(x, t)
    clipped = diffusion.Denoiser(lambda x_, t_: x_, proc, "x0", clip=1.0)(x, t)
    assert raw.abs().max() > 1 and torch.equal(clipped, raw.clamp(-1, 1))
    with pytest.raises(ValueError, match="clip must be a positive bound"):
        diffusion.Denoiser(lambda x_, t_: x_, proc, "x0", clip=0)


@pytest.mark.paths
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_alpha_sigma_is_alpha_and_sigma_bit_for_bit(schedule):
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE), schedule=schedule)
    for t in (torch.rand(64), torch.linspace(1e-3, 1, 33, dtype=torch.float64)):
        a, s = proc.alpha_sigma(t)
        assert torch.equal(a, proc.alpha(t)) and torch.equal(s, proc.sigma(t))


@pytest.mark.paths
@pytest.mark.parametrize("cov", [spectral.isotropic(SHAPE), spectral.band_stop(SHAPE, 0.2, 0.3)])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_loss_mean_is_the_mean_of_the_per_sample_losses(cov, prediction):
    proc = diffusion.VPProcess(cov)
    x0, t = torch.randn(16, *SHAPE, dtype=torch.float64), torch.rand(16, dtype=torch.float64)
    model = lambda x, t: 0.3 * x  # noqa: E731
    run = lambda r: diffusion.loss(model, proc, x0, prediction, torch.Generator().manual_seed(2), t, reduction=r)  # noqa: E731
    per_sample = run("none")
    assert per_sample.shape == (16,)
    torch.testing.assert_close(run("mean"), per_sample.mean())
    # by hand: the error projected onto the support (eps), squared, averaged per sample
    eps, n = proc.noise_like(x0, torch.Generator().manual_seed(2))
    x_t = proc.q_sample(x0, t, eps)
    err = model(x_t, t) - target(proc, prediction, x0, eps, n, t)
    err = cov.project(err) if prediction == "eps" else err
    torch.testing.assert_close(per_sample, err.pow(2).flatten(1).mean(1))
