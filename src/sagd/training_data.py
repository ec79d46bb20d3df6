"""What the loss sees: the train split (images or latents) in memory, or streamed from disk.

``training_data(cfg, vae)`` picks the source; ``batches(data, ...)`` draws from it. Both sources
share one resumable interface: an endless iterator of ``(x0 (B, C, H, W), labels (B,) or None)``
on the device whose position is restored from the run's checkpoint:

* in memory (``ImageData``): ``random_batches``, whose only state is the ``data`` generator;
* streamed (``StreamData``, ``data.stream``): ``DataLoader`` workers read a folder or Arrow data set,
  or the latent shards of ``sagd encode`` (``data.latent_shards``), in a seeded order per epoch; the
  position is the count of batches a process has drawn, which the checkpoint records (``stream_batches``).

``cfg.data_loading``: ``"memory"``, ``"stream"`` (folder and arrow data sets, precomputed latents), or
``"auto"``: stream when the split's float32 values (pixels or latents) would exceed ``MEMORY_BYTES``.

The two orders differ: in memory each batch is a fresh ``randperm`` of the ``data`` generator (no
epochs), streamed each epoch is one permutation drawn from ``(seed, epoch)``, so that a process can
resume from a batch count without reading anything. A streamed and an in-memory run of one seed
therefore see the same data in different batches.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from .data import DatasetNotFoundError, ImageData, load_dataset, parse_dataset_spec, random_batches
from .data.custom import BadImage
from .data.stream import STREAMABLE, StreamBatches
from .data.transforms import random_hflip
from .data.latent_shards import LatentShards
from .latent import VAE, encode_data

LOADINGS = ("auto", "memory", "stream")
MEMORY_BYTES = 2 * 2**30  # "auto" holds a split in memory up to this many bytes of float32 values
FIT_IMAGES = 2048  # a stream's images (or latents) that data_matched spectra are fitted on (and the probe falls back to)


@dataclass
class StreamData:
    """A streamed split: ``source`` (a map-style ``Dataset`` of ``(image or latent (C, H, W), label)``) and, for what
    needs images up front (``data_matched`` spectra, the probe's fallback), ``images`` ``(≤ FIT_IMAGES, C, H, W)``
    drawn from a seeded permutation, with their ``labels``."""

    source: torch.utils.data.Dataset
    images: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int | None
    hflip: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.source)


def training_data(cfg, vae: VAE | None) -> ImageData | StreamData:
    """The train split the loss sees: images or latents in memory (latents read from ``cfg.latents`` or
    encoded now), or a stream (``cfg.data_loading``)."""
    if cfg.latents is not None:
        shards = LatentShards(cfg.latents, cfg.dataset, cfg.pad_to)
        return _stream(shards, cfg.seed, False) if _streams(cfg.data_loading, shards) else shards.load(cfg.dataset)
    name, kwargs = parse_dataset_spec(cfg.dataset)
    if cfg.data_loading == "stream" and name not in STREAMABLE:
        raise ValueError(f"config data_loading: stream reads folder and arrow data sets and precomputed latents "
                         f"(latents), not {name!r}")
    if cfg.data_loading != "memory" and name in STREAMABLE and not kwargs.get("skip_bad"):
        hflip = kwargs.pop("hflip", False)
        try:
            source = STREAMABLE[name]("train", **kwargs, pad_to=cfg.pad_to)
        except BadImage:
            if cfg.data_loading == "stream":
                raise
            source = None  # auto: the in-memory loader names the file (or leaves it out with skip_bad)
        if source is not None and _streams(cfg.data_loading, source):
            if vae is not None:
                raise ValueError("config data_loading: streamed images cannot be encoded on the fly; "
                                 "precompute latents with sagd encode (--latents)")
            return _stream(source, cfg.seed, hflip)
    elif cfg.data_loading == "stream":
        raise ValueError("dataset skip_bad: a stream reads each file when it is drawn and cannot leave bad ones "
                         "out; remove them, or set data_loading: memory")
    data = load_dataset(cfg.dataset, "train", root=cfg.data_root, pad_to=cfg.pad_to)
    return data if vae is None else encode_data(data, vae)


def probe_images(cfg, data: ImageData | StreamData, vae: VAE | None = None) -> torch.Tensor:
    """The learning-order probe's batch ``(≤ probe_n, C, H, W)``: the first test images (their latents with
    ``vae``), or the last of ``data``'s images for data sets with no test split on this machine. Folder and
    Arrow data sets are read one image at a time, so that a large test split (or a flat folder's one set,
    which serves every split) is never loaded whole."""
    name, kwargs = parse_dataset_spec(cfg.dataset)
    try:
        if name in STREAMABLE and not kwargs.get("skip_bad"):
            kwargs.pop("hflip", None)
            test = STREAMABLE[name]("test", **kwargs, pad_to=cfg.pad_to)
            images = torch.stack([test[i][0] for i in range(min(cfg.probe_n, len(test)))])
        else:
            images = load_dataset(cfg.dataset, "test", root=cfg.data_root, pad_to=cfg.pad_to).images[: cfg.probe_n]
    except (DatasetNotFoundError, ValueError):
        return data.images.flip(0)[: cfg.probe_n]
    return images if vae is None else vae.encode(images)


def streamed_split(cfg, split: str):
    """``split`` of ``cfg.dataset`` as a map-style source of ``(image, label)`` (``data.stream``) where training
    streams that data set (``cfg.data_loading``, decided on this split's size), else ``None``: a split to load
    whole. Images at the data set's own size (no ``pad_to``), as ``load_dataset`` gives them."""
    name, kwargs = parse_dataset_spec(cfg.dataset)
    if cfg.latents is not None or cfg.data_loading == "memory" or name not in STREAMABLE or kwargs.get("skip_bad"):
        return None
    kwargs.pop("hflip", None)
    try:
        source = STREAMABLE[name](split, **kwargs)
    except BadImage:
        return None  # the in-memory loader names the file
    return source if _streams(cfg.data_loading, source) else None


def _streams(loading: str, source) -> bool:
    """Whether ``data_loading`` ``loading`` streams ``source``: ``"stream"`` always, ``"auto"`` above ``MEMORY_BYTES``."""
    return loading == "stream" or (loading == "auto" and len(source) * math.prod(source.shape) * 4 > MEMORY_BYTES)


def _stream(source, seed: int, hflip: bool) -> StreamData:
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(source), generator=g)[:FIT_IMAGES].sort().values.tolist()
    images, labels = zip(*(source[i] for i in pick))
    labels = torch.tensor(labels) if source.num_classes is not None else None
    return StreamData(source, torch.stack(images), labels, source.num_classes, hflip)


def on_device(data: ImageData | StreamData, device, labelled: bool) -> ImageData | StreamData:
    """In-memory data moved to ``device`` (labels dropped unless ``labelled``); a stream as it is."""
    if isinstance(data, StreamData):
        return dataclasses.replace(data, labels=data.labels if labelled else None,
                                   num_classes=data.num_classes if labelled else None)
    return dataclasses.replace(data, images=data.images.to(device), labels=data.labels.to(device) if labelled else None,
                               num_classes=data.num_classes if labelled else None)


def batches(data: ImageData | StreamData, batch_size: int, generator: torch.Generator, seed: int, rank: int,
            world: int, workers: int, start: int = 0):
    """The endless batch iterator of ``data`` (see the module docstring); ``start``: batches already drawn
    by this process (streams; in memory the ``generator``'s state carries the position)."""
    if isinstance(data, ImageData):
        return random_batches(data, batch_size, generator)
    stream = StreamBatches(data.source, batch_size, seed, rank, world, generator.device, workers, start,
                           labelled=data.num_classes is not None)
    return _Flipped(stream, generator) if data.hflip else stream


class _Flipped:
    """A stream whose images are flipped left-right with probability 1/2 (drawn from ``generator``)."""

    def __init__(self, stream: StreamBatches, generator: torch.Generator):
        self.stream, self.generator = stream, generator

    @property
    def consumed(self) -> int:
        return self.stream.consumed

    def __iter__(self):
        return self

    def __next__(self):
        images, labels = next(self.stream)
        return random_hflip(images, self.generator), labels
