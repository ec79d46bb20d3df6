"""Latent SAGD with a small randomly initialised AutoencoderKL (no VAE weights exist offline).

A random VAE's latents carry no meaning, but every piece of the path is real: the scaling factor,
the latent grid the spectrum and network live on, precomputed shards, and decoding for metrics.
"""

import json

import numpy as np
import pytest
import torch
import yaml
from diffusers import DiffusionPipeline

from sagd import checkpoint
from sagd.cli import main
from sagd.data import load_dataset
from sagd.data.latent_shards import LatentShards
from sagd.latent import VAE
from sagd.run import load_run
from sagd.spectral import SpectralCovariance

RUN = dict(dataset="digits", spectrum="data_matched", batch_size=16, warmup=2, log_every=1, checkpoint_every=2,
           sample_every=1000, sample_n=4, sample_steps=2, sample_clip=None)


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


@pytest.mark.paths
def test_encode_uses_the_scaling_factor_and_decodes_back(vae_dir):
    vae = VAE.load(vae_dir)
    x = load_dataset("digits", "test").images[:5]
    z = vae.encode(x)
    assert z.shape == (5, 4, 4, 4) and vae.latent_shape((1, 8, 8)) == (4, 4, 4)
    with torch.no_grad():
        mean = vae.model.encode(x).latent_dist.mean
    torch.testing.assert_close(z, 0.5 * mean, rtol=0, atol=0)  # the same float operations (0.5 scales exactly)
    with torch.no_grad():
        torch.testing.assert_close(vae.decode(z), vae.model.decode(mean).sample.clamp(-1, 1), rtol=0, atol=0)
    with pytest.raises(ValueError, match="divisible by 2"):
        vae.encode(torch.zeros(1, 1, 7, 7))


@pytest.mark.paths
def test_latent_run_trains_samples_and_evaluates_from_precomputed_shards(vae_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGD_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    sagd("encode", "--dataset", "digits", "--vae", vae_dir, "--out", tmp_path / "lat", "--shard-size", 500)
    meta = json.loads((tmp_path / "lat" / "latents.json").read_text())
    assert meta["shards"] == ["shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors"]
    latents = LatentShards(tmp_path / "lat", "digits").load()
    assert latents.images.shape == (1438, 4, 4, 4) and latents.num_classes == 10

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    run = tmp_path / "run"
    sagd("train", "--config", tmp_path / "run.yaml", "--out", run, "--model", "dit-tiny", "--vae", vae_dir,
         "--latents", tmp_path / "lat", "--class-conditional", "--steps", 2)
    cov = SpectralCovariance.from_state_dict(checkpoint.load_tensors(checkpoint.latest(run), "covariance"))
    assert cov.shape == (4, 4, 4)  # the spectrum lives on the latent grid, fitted on the latents
    loaded = load_run(run)
    assert loaded.image_shape == (1, 8, 8)
    x, _ = loaded.sample(3, torch.Generator().manual_seed(0), steps=2)
    assert x.shape == (3, 1, 8, 8) and x.abs().max() <= 1

    sagd("sample", "--run", run, "--n", 3, "--sampling-steps", 2, "--out", tmp_path / "gen")
    assert np.load(tmp_path / "gen" / "samples.npz")["images"].shape == (3, 1, 8, 8)
    sagd("eval", "--run", run, "--n", 8, "--sampling-steps", 2, "--features", "pixels")
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["kind"] == "eval"

    sagd("export", "--run", run, "--out", tmp_path / "pipe")  # the pipeline decodes with the VAE it carries
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "pipe", trust_remote_code=True)
    images = pipe(3, num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images
    expected = np.load(tmp_path / "gen" / "samples.npz")["images"]
    np.testing.assert_array_equal(images.numpy(), expected)


@pytest.mark.paths
def test_encoding_at_the_start_equals_the_shards(vae_dir, tmp_path, float64_training):
    torch.set_num_threads(1)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    sagd("encode", "--dataset", "digits", "--vae", vae_dir, "--out", tmp_path / "lat")
    for name, extra in (("shards", ("--latents", tmp_path / "lat")), ("direct", ())):
        sagd("train", "--config", tmp_path / "run.yaml", "--out", tmp_path / name, "--vae", vae_dir, "--steps", 2,
             *extra)
    a, b = (checkpoint.load_tensors(checkpoint.latest(tmp_path / n), "model") for n in ("shards", "direct"))
    for k in a:  # equal latents, trained in float64 (memory alignment may change the order of float sums)
        assert a[k].dtype == torch.float64
        torch.testing.assert_close(a[k], b[k])


def test_bad_latent_configs(vae_dir, tmp_path, capsys):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    with pytest.raises(SystemExit):
        main(["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "r"), "--latents", str(tmp_path)])
    assert "need the vae" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["encode", "--dataset", "digits", "--vae", str(tmp_path), "--out", str(tmp_path / "l")])
    assert "not an AutoencoderKL folder" in capsys.readouterr().err
