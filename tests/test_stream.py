"""Streaming data: a folder of PNGs, Arrow shards and latent shards read by 2 DataLoader workers, resumed exactly."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sagd import checkpoint, training_data
from sagd.cli import main
from sagd.config import TrainConfig
from sagd.data import ImageData, load_dataset
from sagd.data.latent_shards import LatentShards
from sagd.data.stream import ArrowSource, EpochBatches, FolderSource, StreamBatches

RUN = dict(spectrum="power_law:alpha=-0.5", batch_size=16, grad_accum=2, warmup=2, log_every=1, checkpoint_every=2,
           sample_every=1000, sample_n=4, sample_steps=2, probe_every=0, data_loading="stream", data_workers=2)


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train")


def uint8(images: torch.Tensor) -> np.ndarray:
    return ((images[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory, digits):
    """The digits train split as 8×8 PNGs in class folders (ImageFolder layout)."""
    root = tmp_path_factory.mktemp("pngs")
    for i, (image, label) in enumerate(zip(uint8(digits.images), digits.labels.tolist())):
        (root / f"c{label}").mkdir(exist_ok=True)
        Image.fromarray(image).save(root / f"c{label}" / f"{i:05d}.png")
    return root


@pytest.fixture(scope="module")
def arrow_dir(tmp_path_factory, digits):
    """The digits train split as a datasets.Dataset saved to disk in 3 Arrow shards."""
    import datasets

    root = tmp_path_factory.mktemp("arrow")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)})
    data = datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in uint8(digits.images)],
                                       "label": digits.labels.tolist()}, features=features)
    data.save_to_disk(str(root), num_shards=3)
    return root


def source_keys(source: str, request, hflip: bool = False) -> dict:
    """The config keys that train on ``source``: the digits as PNGs, as Arrow shards, or as latent shards."""
    if source == "latents":
        return {"dataset": "digits", "vae": str(request.getfixturevalue("vae_dir")),
                "latents": str(request.getfixturevalue("latent_dir"))}
    path = request.getfixturevalue("png_folder" if source == "folder" else "arrow_dir")
    return {"dataset": f"{source}:path={path}" + (",hflip=true" if hflip else "")}


def test_epoch_batches_split_the_set_across_processes_and_resume_by_count():
    ranks = [EpochBatches(103, 8, seed=5, rank=r, world=2) for r in range(2)]
    assert ranks[0].per_epoch == 6  # 51 images per process, 6 whole batches
    first = [[b for _, b in zip(range(6), iter(s))] for s in ranks]
    seen = [i for rank in first for batch in rank for i in batch]
    assert len(seen) == len(set(seen)) == 96  # one epoch: disjoint across processes, no repeats
    stream = iter(EpochBatches(103, 8, seed=5, rank=1, world=2))
    whole = [next(stream) for _ in range(20)]
    resumed = iter(EpochBatches(103, 8, seed=5, rank=1, world=2, start=9))
    assert [next(resumed) for _ in range(11)] == whole[9:]  # a resume continues mid-epoch exactly
    assert whole[:6] != whole[6:12]  # each epoch its own order
    with pytest.raises(ValueError, match="exceeds"):
        EpochBatches(10, 8, seed=0, world=2)


@pytest.mark.parametrize("source", ["folder", "arrow"])
def test_sources_read_what_the_in_memory_loaders_do(source, png_folder, arrow_dir, digits):
    data = FolderSource("train", str(png_folder)) if source == "folder" else ArrowSource("train", str(arrow_dir))
    assert len(data) == len(digits) and data.num_classes == 10 and data.shape == (1, 8, 8)
    memory = load_dataset(f"{source}:path={png_folder if source == 'folder' else arrow_dir}", "train")
    for i in (0, 700, len(data) - 1):
        image, label = data[i]
        assert torch.equal(image, memory.images[i]) and label == memory.labels[i]
    if source == "arrow":  # the arrow set holds digits in their order: the 8-bit values round-trip
        assert torch.equal(memory.labels, digits.labels)
        assert np.array_equal(uint8(memory.images), uint8(digits.images))


def test_stream_batches_with_workers_are_the_sampler_order(png_folder):
    source = FolderSource("train", str(png_folder))
    stream = StreamBatches(source, 16, seed=3, rank=0, world=1, device="cpu", workers=2)
    order = iter(EpochBatches(len(source), 16, seed=3))
    for _ in range(95):  # past an epoch boundary (89 batches per epoch)
        images, labels = next(stream)
        index = next(order)
        assert torch.equal(images, torch.stack([source[i][0] for i in index]))
        assert labels.tolist() == [source[i][1] for i in index]
    assert stream.consumed == 95


@pytest.mark.paths
@pytest.mark.parametrize("source", ["folder", "arrow", "latents"])
def test_a_streamed_run_killed_and_resumed_sees_the_same_batches(source, request, tmp_path):
    torch.set_num_threads(1)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, **source_keys(source, request, hflip=True)}))
    whole, split = tmp_path / "whole", tmp_path / "split"
    sagd("train", "--config", config, "--out", whole, "--steps", 4)
    sagd("train", "--config", config, "--out", split, "--steps", 2)  # stops after step 2's checkpoint
    assert checkpoint.load_state(checkpoint.latest(split))["stream_batches"] == 4  # 2 steps x 2 micro-batches
    sagd("train", "--resume", split, "--steps", 4)
    losses = [[json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
               if "loss" in json.loads(line)] for run in (whole, split)]
    assert len(losses[0]) == 4 and losses[0] == losses[1]
    a, b = (checkpoint.load_tensors(checkpoint.latest(run), "model") for run in (whole, split))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_auto_streams_only_large_sets(png_folder, monkeypatch):
    cfg = TrainConfig(dataset=f"folder:path={png_folder}")
    assert isinstance(training_data.training_data(cfg, None), ImageData)  # 1438 tiny images: in memory
    monkeypatch.setattr(training_data, "MEMORY_BYTES", 1000)
    data = training_data.training_data(cfg, None)
    assert isinstance(data, training_data.StreamData) and data.images.shape == (1438, 1, 8, 8)
    assert isinstance(training_data.training_data(cfg.replace(data_loading="memory"), None), ImageData)
    with pytest.raises(ValueError, match="stream reads folder and arrow"):
        training_data.training_data(TrainConfig(dataset="digits", data_loading="stream"), None)


@pytest.mark.paths
@pytest.mark.parametrize("source", ["folder", "latents"])
def test_two_processes_stream_disjoint_shares_and_resume_exactly(source, request, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, **source_keys(source, request), "grad_accum": 1}))

    def launch(*args):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        result = subprocess.run(
            [Path(sys.executable).parent / "accelerate", "launch", "--multi_gpu", "--num_processes", "2",
             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
             str(port), "-m", "sagd.cli", "train", *map(str, args)],
            env={**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}, capture_output=True, text=True,
            timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    launch("--config", config, "--out", tmp_path / "whole", "--steps", 4)
    launch("--config", config, "--out", tmp_path / "split", "--steps", 2)
    launch("--resume", tmp_path / "split", "--steps", 4)
    a, b = (checkpoint.load_tensors(checkpoint.latest(tmp_path / r), "model") for r in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = checkpoint.load_state(checkpoint.latest(tmp_path / "split"))
    assert state["processes"] == 2 and state["stream_batches"] == 4


def test_skip_bad_folders_stay_in_memory(png_folder):
    cfg = TrainConfig(dataset=f"folder:path={png_folder},skip_bad=true")
    assert isinstance(training_data.training_data(cfg, None), ImageData)
    with pytest.raises(ValueError, match="cannot leave bad ones out"):
        training_data.training_data(cfg.replace(data_loading="stream"), None)


def test_latent_shards_read_what_the_files_hold(latent_dir, digits):
    from safetensors.torch import load_file

    files = [load_file(path) for path in sorted(latent_dir.glob("shard-*.safetensors"))]
    latents, labels = torch.cat([f["latents"] for f in files]), torch.cat([f["labels"] for f in files])
    shards = LatentShards(latent_dir, "digits")
    assert len(shards) == 1438 and shards.shape == (4, 4, 4) and shards.num_classes == 10
    assert torch.equal(labels, digits.labels)
    index = [1437, 0, 500, 499, 500, 1000, 3]  # across the 3 shards, out of order, repeated
    items = shards.__getitems__(index)
    assert torch.equal(torch.stack([x for x, _ in items]), latents[index]) and [y for _, y in items] == labels[index].tolist()
    assert all(torch.equal(shards[i][0], latents[i]) for i in index)
    memory = shards.load("digits")
    assert torch.equal(memory.images, latents) and torch.equal(memory.labels, labels)


def test_streamed_latents_are_the_in_memory_latents_in_the_sampler_order(latent_dir):
    """What a stream promises: batch ``b`` is the in-memory split at ``EpochBatches``' ``b``-th index batch,
    read by 2 workers. (An in-memory run draws another order: see ``training_data``.)"""
    shards = LatentShards(latent_dir, "digits")
    memory = shards.load("digits")
    stream = StreamBatches(shards, 16, seed=3, rank=1, world=2, device="cpu", workers=2)
    order = iter(EpochBatches(len(shards), 16, seed=3, rank=1, world=2))
    for _ in range(50):  # past an epoch boundary (44 batches per epoch and process)
        latents, labels = next(stream)
        index = next(order)
        assert torch.equal(latents, memory.images[index]) and torch.equal(labels, memory.labels[index])
    assert stream.consumed == 50


def test_auto_streams_large_latent_sets_and_fits_on_a_seeded_subset(latent_dir, vae_dir, monkeypatch):
    cfg = TrainConfig(dataset="digits", vae=str(vae_dir), latents=str(latent_dir), seed=7)
    memory = training_data.training_data(cfg, None)
    assert isinstance(memory, ImageData) and memory.images.shape == (1438, 4, 4, 4)
    monkeypatch.setattr(training_data, "MEMORY_BYTES", 1000)
    monkeypatch.setattr(training_data, "FIT_IMAGES", 100)
    data = training_data.training_data(cfg, None)
    pick = torch.randperm(1438, generator=torch.Generator().manual_seed(7))[:100].sort().values
    assert isinstance(data, training_data.StreamData) and not data.hflip
    assert torch.equal(data.images, memory.images[pick]) and torch.equal(data.labels, memory.labels[pick])
    assert isinstance(training_data.training_data(cfg.replace(data_loading="memory"), None), ImageData)
    monkeypatch.setattr(training_data, "MEMORY_BYTES", 2 * 2**30)
    assert isinstance(training_data.training_data(cfg.replace(data_loading="stream"), None), training_data.StreamData)


def test_the_probe_reads_its_images_alone(png_folder, monkeypatch):
    """The learning-order probe's batch from a folder: the in-memory loader's first test images (a flat or
    class folder serves its one set as every split), read one by one, never the whole set."""
    from sagd.data import stream

    cfg = TrainConfig(dataset=f"folder:path={png_folder}", probe_n=16)
    expected = load_dataset(cfg.dataset, "test").images[:16]
    reads = []
    read_image = stream.read_image
    monkeypatch.setattr(stream, "read_image", lambda *a: reads.append(a[0]) or read_image(*a))
    images = training_data.probe_images(cfg, None)
    assert torch.equal(images, expected)
    assert len(reads) == 1 + 16  # the source's first image sets its shape; the set holds 1,797


class Counting:
    """A feature extractor that counts the images it sees (``PixelFeatures`` underneath)."""

    def __init__(self):
        from sagd.metrics import PixelFeatures

        self.inner, self.seen = PixelFeatures(), 0
        self.name = self.inner.name

    def __call__(self, images, batch_size=256):
        self.seen += len(images)
        return self.inner(images, batch_size=batch_size)


@pytest.mark.paths
@pytest.mark.parametrize("keep", [True, False])
def test_streamed_reference_stats_are_the_in_memory_ones(keep, png_folder, tmp_path):
    from sagd.metrics import reference_stats, streamed_reference_stats

    images = load_dataset(f"folder:path={png_folder}", "test").images
    memory = reference_stats(Counting(), images, "digits/test", tmp_path / "memory", keep_features=keep)
    extractor = Counting()
    source = FolderSource("test", str(png_folder))
    streamed = streamed_reference_stats(extractor, source, "digits/test", tmp_path / "stream", keep_features=keep,
                                        batch_size=100, workers=2)
    assert streamed.path.name == memory.path.name  # the whole split's hash: one cache file for both
    assert streamed.n == memory.n == len(images) and extractor.seen == len(images)
    np.testing.assert_allclose(streamed.mu, memory.mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(streamed.cov, memory.cov, rtol=0, atol=1e-12 * np.abs(memory.cov).max())
    assert (streamed.features is None) == (not keep)
    if keep:
        assert np.array_equal(streamed.features, memory.features)
    again = streamed_reference_stats(extractor, source, "digits/test", tmp_path / "stream")
    assert extractor.seen == len(images) and np.array_equal(again.cov, streamed.cov)  # read from the cache


@pytest.mark.paths
def test_moments_hold_a_large_mean_without_cancelling():
    from sagd.metrics import feature_stats
    from sagd.metrics.reference import Moments

    g = torch.Generator().manual_seed(0)
    features = 1e6 + torch.randn(1000, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g,
                                                                                            dtype=torch.float64)
    moments = Moments()
    for chunk in features.split(300):
        moments.add(chunk)
    mu, cov = moments.stats()
    mu_ref, cov_ref = feature_stats(features)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-14)
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-9)


@pytest.mark.paths
def test_eval_of_a_streamed_split_never_loads_it_whole(png_folder, tmp_path, monkeypatch):
    """``sagd eval`` of a run whose data set is streamed: the same FID (reference statistics from the same cache
    file, same samples), image-level scores on evenly spaced images, and no whole split in memory."""
    from sagd.commands import eval as eval_command

    torch.set_num_threads(1)
    monkeypatch.setenv("SAGD_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, "dataset": f"folder:path={png_folder}", "data_loading": "auto"}))
    sagd("train", "--config", config, "--out", tmp_path / "run", "--steps", 2)  # 1438 tiny images: in memory
    evaluate = ("eval", "--run", tmp_path / "run", "--n", 8, "--sampling-steps", 2, "--features", "pixels")
    sagd(*evaluate)
    monkeypatch.setattr(training_data, "MEMORY_BYTES", 1000)  # now both splits stream
    monkeypatch.setattr(eval_command, "NN_POOL", 100)
    monkeypatch.setattr(eval_command, "load_dataset", lambda *a, **k: pytest.fail("a split was loaded whole"))
    sagd(*evaluate)
    memory, streamed = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
                        if json.loads(line).get("kind") == "eval"]
    assert len(list((tmp_path / "cache" / "reference").glob("*.npz"))) == 1
    assert streamed["fid"] == pytest.approx(memory["fid"], rel=1e-9)
    assert memory["n_reference"] == memory["n_reference_images"] == memory["nn_pool"] == 1438
    assert streamed["n_reference"] == 1438 and streamed["n_reference_images"] == 256 and streamed["nn_pool"] == 100
    spread = eval_command.spread(FolderSource("test", str(png_folder)), 3)
    everything = load_dataset(f"folder:path={png_folder}", "test").images
    assert torch.equal(spread, everything[[0, 718, 1437]])  # linspace: 0, 718.5 (to even), 1437
