"""PF-ODE likelihood against the closed-form Gaussian log-density (docs/method.md §8–9)."""

import math

import pytest
import torch

from oracles import GaussianOracle, power_law_power
from sagd import diffusion, spectral

SHAPE = (1, 8, 8)
SPECTRA = {
    "isotropic": lambda: spectral.isotropic(SHAPE),
    "red": lambda: spectral.power_law(SHAPE, alpha=-1.0),
    "blue": lambda: spectral.power_law(SHAPE, alpha=1.0),
    "band_stop": lambda: spectral.band_stop(SHAPE, 0.2, 0.3),
}


def setup(name, schedule="linear"):
    cov = SPECTRA[name]()
    proc = diffusion.VPProcess(cov, schedule=schedule)
    oracle = GaussianOracle(proc, power_law_power(SHAPE, -2.0, 0.3))
    return cov, proc, oracle


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("name", SPECTRA)
def test_exact_nll_matches_closed_form(name, schedule):
    cov, proc, oracle = setup(name, schedule)
    x0 = oracle.sample(6, torch.Generator().manual_seed(0))
    got = diffusion.nll(oracle.denoiser, proc, x0)
    # on the support when a band is stopped: the density there is all the model defines
    want = -oracle.log_density(x0, None if cov.full_support else cov.support)
    assert ((got - want).abs() / want.abs()).max() < 0.01, (got, want)


def test_hutchinson_is_unbiased():
    cov, proc, oracle = setup("red")
    x0 = oracle.sample(24, torch.Generator().manual_seed(0))
    exact = diffusion.nll(oracle.denoiser, proc, x0)
    est = diffusion.nll(oracle.denoiser, proc, x0, exact=False, probes=4, generator=torch.Generator().manual_seed(1))
    diff = est - exact
    se = diff.std() / math.sqrt(len(diff))
    assert diff.mean().abs() < 3 * se + 0.01 * exact.mean().abs()


@pytest.mark.paths
def test_bits_per_dim_of_8bit_data():
    cov, proc, oracle = setup("isotropic")
    x = torch.round((oracle.sample(4, torch.Generator().manual_seed(0)).clamp(-1, 1) + 1) * 127.5) / 127.5 - 1
    bpd = diffusion.bits_per_dim(oracle.denoiser, proc, x, generator=torch.Generator().manual_seed(2))
    nats = diffusion.nll(oracle.denoiser, proc, x, rtol=1e-4, atol=1e-4)
    d = cov.dim
    no_deq = diffusion.bits_per_dim(oracle.denoiser, proc, x, dequantize=False, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(no_deq, (nats + d * math.log(127.5)) / (d * math.log(2)), rtol=1e-3, atol=1e-3)
    assert torch.isfinite(bpd).all() and (bpd - no_deq).abs().max() < 0.5


def test_nll_bad_input():
    cov, proc, oracle = setup("isotropic")
    with pytest.raises(ValueError, match="x0 must have shape"):
        diffusion.nll(oracle.denoiser, proc, torch.zeros(2, 1, 8, 9))
    with pytest.raises(ValueError, match="probes must be >= 1"):
        diffusion.nll(oracle.denoiser, proc, torch.zeros(2, *SHAPE), exact=False, probes=0)
