"""Frequency samplers (docs/method.md §11) against the closed-form Gaussian oracles and against ``samplers.py``."""

import pytest
import torch

from freqdiag_oracles import FrequencyOracle
from oracles import GaussianOracle, power_law_power, spectrum
from sagd import diffusion, spectral
from sagd.diffusion import frequency as fq
from sagd.diffusion import frequency_samplers as fs

SHAPE = (1, 8, 8)
N = 2000
POWER = power_law_power(SHAPE, -2.0, scale=0.3)
SPECTRA = {"red": lambda: spectral.power_law(SHAPE, alpha=-1.0), "blue": lambda: spectral.power_law(SHAPE, alpha=1.0),
           "band_stop": lambda: spectral.band_stop(SHAPE, 0.2, 0.3)}


def mean_pattern():
    h = torch.arange(SHAPE[1], dtype=torch.float64)
    return 0.3 * torch.cos(2 * torch.pi * h / SHAPE[1]).view(1, -1, 1).expand(SHAPE).clone()


@pytest.mark.parametrize("spectrum_name", SPECTRA)
@pytest.mark.parametrize("method", fs.METHODS)
def test_sagd_case_is_samplers_py(method, spectrum_name):
    """Two computation paths in float64: per-frequency tensors on the half grid vs ``samplers.py``'s scalars."""
    assert set(fs.METHODS) <= set(diffusion.METHODS)
    vp = diffusion.VPProcess(SPECTRA[spectrum_name]())  # linear: σ_0 = 0, where both end on D (module docstring)
    oracle = GaussianOracle(vp, POWER, None if spectrum_name == "band_stop" else mean_pattern())
    x_T = vp.prior_sample(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = diffusion.sample(oracle.denoiser, vp, 4, method=method, steps=7, x_T=x_T,
                            generator=torch.Generator().manual_seed(1))
    got = fs.sample(oracle.denoiser, fq.from_vp(vp), 4, method=method, steps=7, x_T=x_T,
                    generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


SCHEMES = {"blurring": lambda: fq.blurring(SHAPE), "inverse_heat": lambda: fq.inverse_heat(SHAPE)}
# (few steps, many steps, bound on the mean |log P_sample/P| at many steps); 2000 draws: floor ≈ 0.02.
# Inverse heat's DDIM and SDE end on D at t_min, which still shrinks the finest frequencies (test_freqdiag_exact).
METHODS = {"ddim": (20, 200, 0.25), "ddpm": (20, 200, 0.3), "dpmpp_2m": (10, 200, 0.06), "dpmpp_3m": (10, 200, 0.04),
           "dpmpp_2m_sde": (10, 200, 0.07)}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("method", METHODS)
def test_sampler_reproduces_gaussian_data(method, scheme):
    proc = SCHEMES[scheme]()
    oracle = FrequencyOracle(proc, POWER, mean_pattern())
    if scheme == "inverse_heat":
        proc = proc.with_prior(*oracle.marginal(1.0))  # a_1(0) = 1: the prior keeps the data's mean and DC power
    few, many, bound = METHODS[method]
    errors = []
    for steps in (few, many):
        x = fs.sample(oracle.denoiser, proc, N, method=method, steps=steps, generator=torch.Generator().manual_seed(0),
                      dtype=torch.float64)
        errors.append((spectrum(x - oracle.mu) / POWER).log().abs().mean().item())
    assert errors[1] < bound, errors
    assert errors[1] < 0.6 * errors[0], f"no convergence as steps grow: {errors}"
    assert (x.mean(0) - oracle.mu).abs().max() < 0.06


class Adversary:
    def __init__(self):
        self.g = torch.Generator().manual_seed(7)

    def __call__(self, x, t):
        return torch.randn(x.shape, generator=self.g, dtype=x.dtype)


@pytest.mark.parametrize("method", fs.METHODS)
def test_selective_omission_whatever_the_denoiser(method):
    cov = spectral.band_stop((2, 12, 10), 0.15, 0.3)
    proc = fq.sagd(cov)
    x = fs.sample(Adversary(), proc, 64, method=method, steps=12, generator=torch.Generator().manual_seed(0))
    energy = spectrum(x)
    assert energy[~cov.support].max() < 1e-9 * energy[cov.support].mean()


@pytest.mark.parametrize("method", fs.METHODS)
def test_nfe_is_counted_honestly(method):
    proc = fq.blurring(SHAPE)
    calls = []
    for steps in (1, 2, 7):
        calls.clear()
        fs.sample(lambda x, t: calls.append(1) or x, proc, 2, method=method, steps=steps,
                  generator=torch.Generator().manual_seed(0))
        assert len(calls) == diffusion.nfe(method, steps)


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="heun"), "method must be one of"),
    (dict(method="dpmpp_3m", eta=0.5), "eta is used by method='ddim' only"),
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(x_T=torch.zeros(4, 1, 8, 7)), "x_T must have shape"),
    (dict(proc=diffusion.VPProcess(spectral.isotropic(SHAPE))), "proc must be a FrequencyProcess"),
])
def test_bad_sampler_input(kwargs, match):
    args = dict(proc=fq.blurring(SHAPE), n=4, method="ddim", steps=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fs.sample(lambda x, t: x, **args)
