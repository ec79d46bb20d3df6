"""PF-ODE likelihood of the frequency-diagonal process against the closed-form Gaussian density of ``p_{t0}``."""

import math

import pytest
import torch

from freqdiag_oracles import FrequencyOracle
from oracles import power_law_power
from sagd import diffusion, spectral
from sagd.diffusion import frequency as fq
from sagd.diffusion import frequency_likelihood as fl

SHAPE = (1, 8, 8)
POWER = power_law_power(SHAPE, -2.0, 0.3)
SCHEMES = {"blurring": lambda: fq.blurring(SHAPE), "inverse_heat": lambda: fq.inverse_heat(SHAPE),
           "sagd_red": lambda: fq.sagd(spectral.power_law(SHAPE, alpha=-1.0)),
           "sagd_blue_cosine": lambda: fq.sagd(spectral.power_law(SHAPE, alpha=1.0), "cosine")}


def setup(scheme):
    proc = SCHEMES[scheme]()
    oracle = FrequencyOracle(proc, POWER)
    return proc.with_prior(*oracle.marginal(1.0)), oracle  # the exact p_1: only the ODE's error remains


@pytest.mark.parametrize("scheme", SCHEMES)
def test_exact_nll_is_the_marginal_density(scheme):
    proc, oracle = setup(scheme)
    x = oracle.sample(3, torch.Generator().manual_seed(0))
    got = fl.nll(oracle.denoiser, proc, x, t0=1e-3)
    want = -oracle.log_density(x, 1e-3)
    assert ((got - want).abs() / want.abs()).max() < 1e-3, (got, want)


def test_sagd_case_is_likelihood_py():
    """Two paths (``likelihood.nll`` on the ``VPProcess``, this one on ``from_vp``) agree to the solvers' tolerance."""
    vp = diffusion.VPProcess(spectral.power_law(SHAPE, alpha=-1.0))
    proc = fq.from_vp(vp)
    oracle = FrequencyOracle(proc, POWER)
    x = oracle.sample(2, torch.Generator().manual_seed(1))
    want = diffusion.nll(oracle.denoiser, vp, x, rtol=1e-7, atol=1e-7)
    got = fl.nll(oracle.denoiser, proc, x, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=0)


def test_hutchinson_is_unbiased():
    proc, oracle = setup("blurring")
    x = oracle.sample(16, torch.Generator().manual_seed(0))
    exact = fl.nll(oracle.denoiser, proc, x, t0=1e-3)
    est = fl.nll(oracle.denoiser, proc, x, t0=1e-3, exact=False, probes=4, generator=torch.Generator().manual_seed(1))
    diff = est - exact
    assert diff.mean().abs() < 3 * diff.std() / math.sqrt(len(diff)) + 1e-3 * exact.abs().mean()


@pytest.mark.parametrize("make, match", [
    (lambda o: fl.nll(o.denoiser, fq.sagd(spectral.band_stop(SHAPE, 0.2, 0.3)), torch.zeros(1, *SHAPE)),
     "needs s_t\\(k\\) > 0"),
    (lambda o: fl.nll(o.denoiser, fq.blurring(SHAPE), torch.zeros(1, 1, 8, 9)), "x0 must have shape"),
    (lambda o: fl.nll(o.denoiser, fq.blurring(SHAPE), torch.zeros(1, *SHAPE), t0=1.5), "t0 must be in"),
    (lambda o: fl.nll(o.denoiser, diffusion.VPProcess(spectral.isotropic(SHAPE)), torch.zeros(1, *SHAPE)),
     "must be a FrequencyProcess"),
])
def test_nll_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make(FrequencyOracle(fq.blurring(SHAPE), POWER))
