"""The exact law of every frequency sampler (``frequency_exact``) against Monte Carlo, ``exact.py`` and theory."""

import math

import pytest
import torch

from freqdiag_oracles import FrequencyOracle
from oracles import power_law_power, spectrum
from test_exact import mean_pattern, self_conjugate
from sagd import diffusion, spectral
from sagd.diffusion import exact
from sagd.diffusion import frequency as fq
from sagd.diffusion import frequency_exact as fe
from sagd.diffusion import frequency_samplers as fs

SHAPE = (1, 8, 8)
POWER = power_law_power(SHAPE, -2.0, scale=0.3)


DATA = exact.GaussianData(POWER, mean_pattern())
SCHEMES = {"blurring": lambda: fq.blurring(SHAPE),
           "inverse_heat": lambda: fe.with_exact_prior(DATA, fq.inverse_heat(SHAPE))}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_gain_is_the_oracle_denoiser(scheme):
    proc = SCHEMES[scheme]()
    oracle = FrequencyOracle(proc, POWER, mean_pattern())
    x = torch.randn(5, *SHAPE, dtype=torch.float64)
    for t in (0.01, 0.5, 0.99):
        tb = torch.full((5,), t, dtype=torch.float64)
        torch.testing.assert_close(fe.denoiser(DATA, proc)(x, tb), oracle.denoiser(x, tb), rtol=0, atol=1e-13)
    mean, power = oracle.marginal(1.0)
    got = fe.marginal(DATA, proc, 1.0)
    torch.testing.assert_close(got[0], mean, rtol=0, atol=1e-15)
    torch.testing.assert_close(got[1], power, rtol=1e-14, atol=0)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("method", fs.METHODS)
def test_exact_law_matches_monte_carlo(method, scheme):
    """Three steps: the law is far from the data's, and Monte Carlo must find the evaluator's law."""
    proc = SCHEMES[scheme]()
    oracle = FrequencyOracle(proc, POWER, mean_pattern())
    law = fe.sample_law(DATA, proc, method, steps=3)
    assert law.nfe == diffusion.nfe(method, 3)
    n = 4000
    x = fs.sample(oracle.denoiser, proc, n, method=method, steps=3, generator=torch.Generator().manual_seed(0),
                  dtype=torch.float64)
    z = (spectrum(x - x.mean(0)) / law.power - 1) * math.sqrt(n) / torch.where(self_conjugate(), math.sqrt(2), 1.0)
    assert z.abs().max() < 4.5, z.abs().max()
    zm = (x.mean(0) - law.mean) / (x.var(0).sqrt() / math.sqrt(n))
    assert zm.abs().max() < 4.5
    assert (law.power / POWER).log().abs().mean() > 20 / math.sqrt(n)


@pytest.mark.parametrize("method", fs.METHODS)
@pytest.mark.parametrize("cov", [spectral.power_law(SHAPE, alpha=-1.0), spectral.band_stop(SHAPE, 0.2, 0.3)])
def test_sagd_case_is_exact_py(cov, method):
    """Two paths to one law in float64: this module on ``from_vp`` against ``exact.sample_law`` on the ``VPProcess``."""
    vp = diffusion.VPProcess(cov)
    data = exact.GaussianData(POWER, mean_pattern() if cov.full_support else None)
    want, got = exact.sample_law(data, vp, method, 6), fe.sample_law(data, fq.from_vp(vp), method, 6)
    torch.testing.assert_close(got.power, want.power, rtol=1e-12, atol=1e-20)  # off the support both are ~0
    torch.testing.assert_close(got.mean, want.mean, rtol=0, atol=1e-13)
    assert got.nfe == want.nfe
    assert fe.evaluate(data, fq.from_vp(vp), method, 6)["kl"] == pytest.approx(
        exact.evaluate(data, vp, method, 6)["kl"], rel=1e-10)


# blurring diffusion, 100 → 200 steps: (the order p of the noise-free error, bound on the error at 200 steps)
ORDERS = {"ddpm": (1.0, 0.2), "ddim": (1.0, 0.18), "dpmpp_2m": (2.0, 0.03), "dpmpp_3m": (3.0, 0.002),
          "dpmpp_2m_sde": (2.0, 0.04)}


@pytest.mark.parametrize("method", ORDERS)
def test_convergence_order_on_blurring(method):
    """No sampling noise: each sampler converges at its order on a process whose frequencies have their own λ(k)."""
    assert set(ORDERS) == set(fs.METHODS)
    proc = fq.blurring(SHAPE)
    order, bound = ORDERS[method]
    e1, e2 = (fe.evaluate(DATA, proc, method, s)["log_spectral_error"] for s in (100, 200))
    assert e2 < bound, (e1, e2)
    assert math.log2(e1 / e2) > order - 0.15, (e1, e2)


def test_blurring_grids_follow_the_mean_log_snr_and_beat_the_cosine_ones():
    """``MeanLogSNR`` inverts to float64 rounding and falls with ``t``; on the exact evaluator its grids give
    DPM-Solver++ a lower KL than grids uniform in the cosine schedule's λ (blurring's former default)."""
    proc = fq.blurring(SHAPE)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    lam = proc.log_snr(t)
    assert (lam.diff() < 0).all() and lam[0].item() == pytest.approx(10.0, abs=1e-12)  # no blur at t = 0
    torch.testing.assert_close(proc.t_from_log_snr(lam), t, rtol=0, atol=1e-14)
    la, ls = proc.log_coefficients(t[37])
    assert lam[37].item() == pytest.approx((2 * (la - ls)).mean().item(), rel=1e-14)
    cosine = diffusion.CosineSchedule(logsnr_min=-10.0, logsnr_max=10.0)
    for method, steps in (("dpmpp_2m", 10), ("dpmpp_2m", 20), ("dpmpp_3m", 20)):
        ends = cosine.log_snr(torch.tensor([1.0, proc.t_min], dtype=torch.float64))
        inner = cosine.t_from_log_snr(torch.linspace(ends[0].item(), ends[1].item(), steps, dtype=torch.float64))
        inner[0], inner[-1] = 1.0, proc.t_min
        old = fe.evaluate(DATA, proc, method, steps, t_grid=torch.cat([inner, torch.zeros(1, dtype=torch.float64)]))
        new = fe.evaluate(DATA, proc, method, steps)
        assert new["kl"] < 0.5 * old["kl"], (method, steps, new["kl"], old["kl"])


@pytest.mark.parametrize("method", ["dpmpp_2m", "dpmpp_3m"])
def test_inverse_heat_ode_reaches_the_data(method):
    """The ODE multistep extrapolates to zero noise per frequency and converges to the data; DDIM ends on
    ``D`` at ``t_min``, which still shrinks the finest frequencies (blurred by σ_B,min = 0.5): a floor."""
    proc = SCHEMES["inverse_heat"]()
    errors = [fe.evaluate(DATA, proc, method, s)["log_spectral_error"] for s in (50, 200)]
    assert errors[1] < 2e-3 and errors[1] < errors[0] / 3, errors
    ddim = [fe.evaluate(DATA, proc, "ddim", s)["log_spectral_error"] for s in (400, 800)]
    assert ddim[1] > 0.5 * ddim[0] > 0.02, ddim


@pytest.mark.parametrize("make, match", [
    (lambda: fe.sample_law(DATA, fq.blurring(SHAPE), "heun"), "method must be one of"),
    (lambda: fe.sample_law(DATA, diffusion.VPProcess(spectral.isotropic(SHAPE)), "ddim"), "must be a FrequencyProcess"),
    (lambda: fe.sample_law(DATA, fq.blurring((1, 4, 4)), "ddim"), "data has shape"),
])
def test_bad_exact_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
