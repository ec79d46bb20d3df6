"""Per-frequency parametrisations and Tweedie's formula (docs/method.md §11) against the Gaussian oracle, float64."""

import pytest
import torch

from freqdiag_oracles import FrequencyOracle
from oracles import fft, ifft, power_law_power
from sagd import diffusion, spectral
from sagd.diffusion import frequency as fq
from sagd.diffusion import frequency_parametrization as fp

SHAPE = (1, 8, 8)
SCHEMES = {"blurring": lambda: fq.blurring(SHAPE), "inverse_heat": lambda: fq.inverse_heat(SHAPE),
           "sagd_red": lambda: fq.sagd(spectral.power_law(SHAPE, alpha=-1.0))}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("prediction", fp.PREDICTIONS)
def test_the_target_gives_back_x0(scheme, prediction):
    """A network that outputs the exact target has ``D = x_0``: two paths, ``target`` then ``to_denoised``."""
    proc = SCHEMES[scheme]()
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, *SHAPE, generator=g, dtype=torch.float64), torch.randn(3, *SHAPE, generator=g,
                                                                                   dtype=torch.float64)
    t = torch.tensor([0.02, 0.06, 0.1], dtype=torch.float64)  # inverse heat keeps a_t(k) >= 6e-3 here
    x = torch.stack([proc.q_sample(x0[i:i + 1], t[i], eps[i:i + 1])[0] for i in range(3)])
    d = fp.to_denoised(proc, prediction, fp.target(proc, prediction, x0, eps, t), x, t)
    torch.testing.assert_close(d, x0, rtol=0, atol=1e-12)


def test_v_is_sagds_v_when_isotropic():
    vp = diffusion.VPProcess(spectral.isotropic(SHAPE))
    proc = fq.from_vp(vp)
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, *SHAPE, generator=g, dtype=torch.float64), torch.randn(2, *SHAPE, generator=g,
                                                                                   dtype=torch.float64)
    t = torch.tensor([0.3, 0.3], dtype=torch.float64)
    torch.testing.assert_close(fp.target(proc, "v", x0, eps, t), diffusion.target(vp, "v", x0, eps, eps, t),
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tweedie_is_the_score_of_the_marginal(scheme):
    """``score(D)`` of the exact denoiser equals ``∇log p_t`` of the closed-form Gaussian marginal, and back."""
    proc = SCHEMES[scheme]()
    oracle = FrequencyOracle(proc, power_law_power(SHAPE, -2.0, 0.3))
    x = torch.randn(4, *SHAPE, dtype=torch.float64)
    for t in (0.1, 0.6):
        tb = torch.full((4,), t, dtype=torch.float64)
        mean, power = oracle.marginal(t)
        want = -ifft(fft(x - mean) / power)
        got = fp.score(proc, oracle.denoiser(x, tb), x, tb)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10 * want.abs().max().item())
        if scheme != "inverse_heat" or t < 0.5:  # 1/a_t overflows where inverse heat blurs a frequency away
            torch.testing.assert_close(fp.denoised_from_score(proc, got, x, tb), oracle.denoiser(x, tb),
                                       rtol=0, atol=1e-9)


def test_bad_prediction():
    with pytest.raises(ValueError, match="prediction must be one of"):
        fp.to_denoised(fq.blurring(SHAPE), "colored_eps", torch.zeros(1, *SHAPE), torch.zeros(1, *SHAPE),
                       torch.zeros(1))


@pytest.mark.parametrize("prediction", fp.PREDICTIONS)
def test_loss_of_the_optimal_model_is_the_posterior_variance(prediction):
    """With the exact ``E[target | x_t]`` as the model, the loss is the posterior variance, per frequency
    ``P s²/(a²P + s²)`` (``x0``), ``a² P/(a²P + s²)`` (``eps``), ``r² P/(a²P + s²)`` (``v``), averaged over frequencies."""
    proc = fq.blurring(SHAPE)
    power = power_law_power(SHAPE, -2.0, 0.3)
    oracle = FrequencyOracle(proc, power)
    t = 0.4
    a, s = oracle.coefficients(t)
    r2 = a**2 + s**2

    def model(x, tb):
        d = oracle.denoiser(x, tb)
        if prediction == "x0":
            return d
        eps = ifft(fft(x - ifft(a * fft(d))) / s)  # E[ε | x] = (x - A D) / s
        return eps if prediction == "eps" else ifft((a * fft(eps) - s * fft(d)) / r2.sqrt())

    n = 4000
    x0 = oracle.sample(n, torch.Generator().manual_seed(0))
    per = fp.loss(model, proc, x0, prediction, generator=torch.Generator().manual_seed(1),
                  t=torch.full((n,), t, dtype=torch.float64), reduction="none")
    want = {"x0": power * s**2, "eps": a**2 * power, "v": r2 * power}[prediction] / (a**2 * power + s**2)
    z = (per.mean() - want.mean()) / (per.std() / n**0.5)
    assert abs(z) < 4.5, (per.mean().item(), want.mean().item())
    assert per.std() > 0
