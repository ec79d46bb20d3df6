"""Every sampler against the closed-form Gaussian oracles (docs/method.md §9), and selective omission (§7)."""

import pytest
import torch

from oracles import GaussianOracle, MixtureOracle, power_law_power, spectrum
from sagd import diffusion, spectral

SHAPE = (1, 8, 8)
N = 2000
SPECTRA = {
    "isotropic": lambda: spectral.isotropic(SHAPE),
    "red": lambda: spectral.power_law(SHAPE, alpha=-1.0),
    "blue": lambda: spectral.power_law(SHAPE, alpha=1.0),
    "band_stop": lambda: spectral.band_stop(SHAPE, 0.2, 0.3),
}
# (few steps, many steps, bound on the mean |log P_sample/P| at many steps). The sampling-noise
# floor of 2000 draws is about 0.02 (test_exact.py pins each method's noise-free error).
METHODS = {
    "ddim": (10, 100, 0.08),
    "ddpm": (30, 300, 0.09),
    "euler_maruyama": (30, 300, 0.04),
    "heun": (5, 30, 0.06),
    "dpmpp_2m": (5, 30, 0.04),
    "dpmpp_3m": (3, 20, 0.04),
    "dpmpp_2m_sde": (5, 60, 0.04),
}


def log_spectral_error(x, power, support):
    return (spectrum(x)[support] / power[support]).log().abs().mean().item()


def mean_pattern():
    h = torch.arange(SHAPE[1], dtype=torch.float64)
    return 0.3 * torch.cos(2 * torch.pi * h / SHAPE[1]).view(1, -1, 1).expand(SHAPE).clone()


@pytest.mark.parametrize("spectrum_name", SPECTRA)
@pytest.mark.parametrize("method", METHODS)
def test_sampler_reproduces_gaussian_data(method, spectrum_name):
    cov = SPECTRA[spectrum_name]()
    proc = diffusion.VPProcess(cov)
    power = power_law_power(SHAPE, -2.0, scale=0.3)
    mu = mean_pattern() if spectrum_name != "band_stop" else None  # μ has content in the stopped band
    oracle = GaussianOracle(proc, power, mu)
    few, many, bound = METHODS[method]
    errors = []
    for steps in (few, many):
        g = torch.Generator().manual_seed(0)
        x = diffusion.sample(oracle.denoiser, proc, N, method=method, steps=steps, generator=g, dtype=torch.float64)
        errors.append(log_spectral_error(x - oracle.mu, power, cov.support))
    assert errors[1] < bound, errors
    assert errors[1] < 0.5 * errors[0], f"no convergence as steps grow: {errors}"
    assert (x.mean(0) - oracle.mu).abs().max() < 0.06


@pytest.mark.parametrize("method", METHODS)
def test_sampler_on_gaussian_mixture(method):
    proc = diffusion.VPProcess(spectral.power_law(SHAPE, alpha=-1.0))
    means = torch.stack([mean_pattern(), -mean_pattern(), torch.zeros(SHAPE, dtype=torch.float64)])
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    oracle = MixtureOracle(proc, power_law_power(SHAPE, -2.0, scale=0.01), means, weights)
    steps = 1000 if method == "ddpm" else METHODS[method][1]  # uniform-t DDPM needs its 1000 steps here
    x = diffusion.sample(oracle.denoiser, proc, N, method=method, steps=steps,
                         generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    nearest = ((x.unsqueeze(1) - means.unsqueeze(0)) ** 2).flatten(2).sum(-1).argmin(1)
    freq = torch.bincount(nearest, minlength=3).double() / N
    assert (freq - weights).abs().max() < 0.04, freq
    for k in range(3):  # each mode keeps its mean and its spread
        xk = x[nearest == k] - means[k]
        assert xk.mean(0).abs().max() < 0.03
        assert xk.var(0).mean().item() == pytest.approx(0.01, rel=0.15)


class Adversary:
    """A 'denoiser' that returns noise with energy everywhere, the stopped band included."""

    def __init__(self):
        self.g = torch.Generator().manual_seed(7)

    def __call__(self, x, t):
        return torch.randn(x.shape, generator=self.g, dtype=x.dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("noise", ["exact", "per_draw"])
def test_selective_omission_whatever_the_denoiser(method, noise):
    cov = spectral.band_stop((2, 12, 10), 0.15, 0.3)
    proc = diffusion.VPProcess(cov, noise=noise)
    x = diffusion.sample(Adversary(), proc, 64, method=method, steps=12, generator=torch.Generator().manual_seed(0))
    off = ~cov.support
    energy = spectrum(x)
    assert energy[off].max() < 1e-9 * energy[cov.support].mean()


@pytest.mark.paths
def test_trajectory_and_x_T():
    proc = diffusion.VPProcess(spectral.power_law(SHAPE, alpha=-1.0), schedule="cosine")
    oracle = GaussianOracle(proc, power_law_power(SHAPE, -2.0, scale=0.3))
    x_T = proc.prior_sample(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, traj = diffusion.sample(oracle.denoiser, proc, 16, method="ddim", steps=7, x_T=x_T, return_trajectory=True)
    assert len(traj) == 8 and torch.equal(traj[0], x_T) and torch.equal(traj[-1], x)
    again = diffusion.sample(oracle.denoiser, proc, 16, method="ddim", steps=7, x_T=x_T)
    torch.testing.assert_close(again, x)  # η = 0 is deterministic


class Counting:
    def __init__(self, denoiser):
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.denoiser(x, t)


@pytest.mark.parametrize("method", diffusion.METHODS)
def test_nfe_is_counted_honestly(method):
    assert set(diffusion.METHODS) == set(METHODS)  # every method is under the oracle tests above
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE))
    for steps in (1, 2, 7):
        d = Counting(GaussianOracle(proc, power_law_power(SHAPE, -2.0)).denoiser)
        diffusion.sample(d, proc, 2, method=method, steps=steps, generator=torch.Generator().manual_seed(0))
        assert d.calls == diffusion.nfe(method, steps)
    for budget in (1, 5, 10, 20):
        steps = diffusion.steps_for_nfe(method, budget)
        assert diffusion.nfe(method, steps) <= budget < diffusion.nfe(method, steps + 1)
    assert diffusion.nfe("heun", 5) == 9 and diffusion.nfe("dpmpp_3m", 5) == 5


def test_default_grids():
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE))
    ts = diffusion.time_grid(proc, 10)
    assert ts[0] == 1 and ts[-1] == 0 and ts[-2] == proc.t_min and len(ts) == 11
    lam = proc.log_snr(ts[:-1])
    steps = lam[1:] - lam[:-1]
    torch.testing.assert_close(steps, steps.mean().expand_as(steps), rtol=1e-6, atol=1e-6)
    uni = diffusion.time_grid(proc, 10, spacing="uniform")
    torch.testing.assert_close(uni[1:-1] - uni[:-2], (uni[1] - uni[0]).expand(9), rtol=1e-9, atol=1e-9)
    assert len(diffusion.time_grid(proc, 1)) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="plms"), "method must be one of"),
        (dict(method="dpmpp_3m", eta=0.5), "eta is used by method='ddim' only"),
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(steps=2.5), "steps must be an integer"),
        (dict(eta=1.5), "eta must be a number in"),
        (dict(method="heun", eta=0.5), "eta is used by method='ddim' only"),
        (dict(t_grid=[1.0, 0.5]), "t_grid must decrease"),
        (dict(x_T=torch.zeros(4, 1, 8, 7)), "x_T must have shape"),
        (dict(n=0), "n must be >= 1"),
    ],
)
def test_bad_sampler_input(kwargs, match):
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE))
    args = dict(n=4, method="ddim", steps=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        diffusion.sample(lambda x, t: x, proc, **args)
