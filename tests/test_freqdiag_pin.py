"""SAGD's samplers and exact evaluator pinned bit for bit at the commit that added the frequency-diagonal process.

``sagd.diffusion.frequency`` generalises ``VPProcess`` without routing it through new code; these hashes of
today's outputs (float64 and float32, a red spectrum and a stopped band, every method, 6 steps, seed 0) prove
that nothing ``VPProcess`` computes changed. A hash is a property of one torch build and one kernel path: under
``ATEN_CPU_CAPABILITY=default`` the float32 hashes change on the very machine that recorded them (14 of 31
differ), and MKL's FFT picks its own code path by CPU vendor. So the pin runs only where all three match the
recording (torch 2.13.0+cpu, ATen's AVX512 kernels, an AMD CPU) and is skipped elsewhere; the float64 tests of
``test_freqdiag_*`` that compare the new process with ``VPProcess`` to 1e-12 run everywhere.
"""

import hashlib

import pytest
import torch

from oracles import GaussianOracle, power_law_power
from sagd import diffusion, spectral
from sagd.diffusion import exact

SHAPE = (1, 8, 8)
RECORDED_ON = ("2.13.0+cpu", "AVX512", "AuthenticAMD")  # torch build, ATen CPU capability, CPU vendor
SAMPLES = {
    ("red", "ddpm", "float64"): "efe4117857f4ea53", ("red", "ddpm", "float32"): "9d03dcfd2099e7be",
    ("red", "ddim", "float64"): "6f0a1e83b6db56bf", ("red", "ddim", "float32"): "68246ca269b62301",
    ("red", "euler_maruyama", "float64"): "8744b6045be90b29", ("red", "euler_maruyama", "float32"): "f5a7ea607f351ed5",
    ("red", "heun", "float64"): "d7181c344ddd23f3", ("red", "heun", "float32"): "e8e54bbd54cc2594",
    ("red", "dpmpp_2m", "float64"): "48bc1bda5e3ee35b", ("red", "dpmpp_2m", "float32"): "988a3657993aac56",
    ("red", "dpmpp_3m", "float64"): "11554c4da6801fb1", ("red", "dpmpp_3m", "float32"): "c7e783f27fc5730a",
    ("red", "dpmpp_2m_sde", "float64"): "e1f99ff41111905c", ("red", "dpmpp_2m_sde", "float32"): "393afabf25f07088",
    ("band_stop", "ddpm", "float64"): "c3969378e0652cbc", ("band_stop", "ddpm", "float32"): "eb166bfd2aa24655",
    ("band_stop", "ddim", "float64"): "15802c6681172f6f", ("band_stop", "ddim", "float32"): "9e68c5e97b6ed724",
    ("band_stop", "euler_maruyama", "float64"): "3ca189758eba1d65",
    ("band_stop", "euler_maruyama", "float32"): "25935a741ad3cf29",
    ("band_stop", "heun", "float64"): "3a1eede13317dd81", ("band_stop", "heun", "float32"): "893752b0c90f6f56",
    ("band_stop", "dpmpp_2m", "float64"): "cae71f7974bafe15", ("band_stop", "dpmpp_2m", "float32"): "14332dacffd9e568",
    ("band_stop", "dpmpp_3m", "float64"): "0365fff684e54b4f", ("band_stop", "dpmpp_3m", "float32"): "1296ef8059fa5625",
    ("band_stop", "dpmpp_2m_sde", "float64"): "dec9a5cd8ac280c5",
    ("band_stop", "dpmpp_2m_sde", "float32"): "fde50ea388a1b727",
}
LAWS = {"ddim": "e1a69e5b65a5195f", "dpmpp_3m": "82da4bb801a2325a", "dpmpp_2m_sde": "5a17cf1d7546dc4c"}
SPECTRA = {"red": lambda: spectral.power_law(SHAPE, alpha=-1.0), "band_stop": lambda: spectral.band_stop(SHAPE, 0.2, 0.3)}


def kernel_path() -> tuple[str, str, str]:
    """This machine's torch build, ATen CPU capability and CPU vendor (``/proc/cpuinfo``; "" where unreadable)."""
    try:
        vendor = next((line.split(":")[1].strip() for line in open("/proc/cpuinfo") if line.startswith("vendor_id")), "")
    except OSError:
        vendor = ""
    return torch.__version__, torch.backends.cpu.get_cpu_capability(), vendor


pinned_build = pytest.mark.skipif(kernel_path() != RECORDED_ON,
                                  reason=f"the hashes were recorded on {RECORDED_ON}, this is {kernel_path()}")


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


@pinned_build
@pytest.mark.parametrize("name, method, dtype", list(SAMPLES))
def test_sagd_samples_are_unchanged(name, method, dtype):
    assert {m for _, m, _ in SAMPLES} == set(diffusion.METHODS)
    proc = diffusion.VPProcess(SPECTRA[name]())
    oracle = GaussianOracle(proc, power_law_power(SHAPE, -2.0, scale=0.3))
    x = diffusion.sample(oracle.denoiser, proc, 3, method=method, steps=6, generator=torch.Generator().manual_seed(0),
                         dtype=getattr(torch, dtype))
    assert digest(x) == SAMPLES[(name, method, dtype)]


@pinned_build
@pytest.mark.parametrize("method", LAWS)
def test_sagd_exact_laws_are_unchanged(method):
    proc = diffusion.VPProcess(SPECTRA["red"]())
    law = exact.sample_law(exact.GaussianData(power_law_power(SHAPE, -2.0, scale=0.3)), proc, method, steps=6)
    assert digest(torch.cat([law.mean.flatten(), law.power.flatten()])) == LAWS[method]
