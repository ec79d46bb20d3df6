"""Test-wide settings: one torch thread per worker (two workers share two cores under ``make test``),
unless ``OMP_NUM_THREADS`` asks for more (to check that results do not depend on the thread count)."""

import getpass
import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

if not os.environ.get("OMP_NUM_THREADS"):
    torch.set_num_threads(1)
# torch 2.13's inductor reuses C++ kernels from its on-disk cache that were built under another ATEN_CPU_CAPABILITY,
# and they then compute garbage (seen in .ci/run's AVX2 leg after the native one: NaN samples, and a compiled
# forward 2.6e18 off, where a fresh cache gives 5e-7): one cache per kernel setting of the matrix
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}_{torch.backends.cpu.get_cpu_capability().lower()}"))
sys.path.insert(0, str(Path(__file__).parent))  # the oracles module

pytest_plugins = ("fault_table",)  # the `fault` fixture and `--faults-md` (docs/faults.md)


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """Each test leaves torch's thread count as it found it: an in-process ``sagd train`` takes every free core
    (``threads.configure``), and a test may pin one thread for its own sake."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def vae_dir(tmp_path_factory):
    """A 2-level AutoencoderKL for 1-channel images (factor 2, 4 latent channels), random weights (no VAE
    weights exist offline)."""
    from diffusers import AutoencoderKL

    folder = tmp_path_factory.mktemp("vae")
    torch.manual_seed(0)
    AutoencoderKL(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=(8, 16),
                  down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                  norm_num_groups=4, scaling_factor=0.5).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def latent_dir(tmp_path_factory, vae_dir):
    """The digits train split's latents (1438 × (4, 4, 4), labelled) in 3 shards of ≤ 500, by ``sagd encode``."""
    from sagd.cli import main

    folder = tmp_path_factory.mktemp("latents")
    assert main(["encode", "--dataset", "digits", "--vae", str(vae_dir), "--out", str(folder), "--shard-size", "500"]) == 0
    return folder


class _Float64Network:
    """Mixed into a ``Network``: float64 arithmetic (``.double()`` weights, float64 inputs and times), the output in
    the input's dtype (so that float32 sampling and decoding outside training still run)."""

    def forward(self, x, t, labels=None):
        return super().forward(x.double(), t.double(), labels).to(x.dtype)


@pytest.fixture
def float64_training(monkeypatch):
    """``sagd train`` in float64: float64 weights (and so optimizer, EMA) and float64 batches, for tests that compare
    two training paths (tests/README.md, rule 2a). The time embedding is float32 in diffusers whatever the dtype:
    the same values on both paths."""
    import sagd.train as train

    network, batches = train.Network, train.batches

    def make(*args, **kwargs):
        net = network(*args, **kwargs).double()
        net.__class__ = type(f"Float64{type(net).__name__}", (_Float64Network, type(net)), {})
        return net

    monkeypatch.setattr(train, "Network", make)
    monkeypatch.setattr(train, "batches", lambda *a, **k: ((x.double(), y) for x, y in batches(*a, **k)))
