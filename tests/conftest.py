"""Test-wide settings: one torch thread per worker (two workers share two cores under ``make test``),
unless ``OMP_NUM_THREADS`` asks for more (to check that results do not depend on the thread count)."""

import os
import sys
from pathlib import Path

import pytest
import torch

if not os.environ.get("OMP_NUM_THREADS"):
    torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # the oracles module

pytest_plugins = ("fault_table",)  # the `fault` fixture and `--faults-md` (docs/faults.md)


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
