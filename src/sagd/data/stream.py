"""Streaming data: images read from disk by ``DataLoader`` workers, in a resumable, seeded order.

For sets too large to hold in memory. Two sources, both random-access:

* ``FolderSource``: an image folder (the ``folder`` data set's layouts), one file per read;
* ``ArrowSource``: a Hugging Face ``datasets`` data set saved with ``save_to_disk`` (sharded,
  memory-mapped Arrow files; an ``image`` column and optionally a ``label`` column).

Why Arrow rather than WebDataset ``.tar`` shards: ``.tar`` shards are read sequentially, so a
loader can only shuffle shards and then samples within a buffer, and resuming means replaying the
stream up to where it stopped. Arrow shards are memory-mapped with random access, so one sampler
serves both sources: a fresh permutation of the whole set per epoch, drawn from ``(seed, epoch)``,
split across processes, and an exact resume from a count of batches (no reading).

``EpochBatches`` is that sampler; ``StreamBatches`` wraps it in a ``DataLoader`` (workers, pinned
memory) and yields ``(images (B, C, H, W) in [-1, 1], labels (B,) or None)`` on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from .custom import folder_files, read_image
from .image_data import ImageData
from .locate import DatasetNotFoundError
from .transforms import pad_square, to_unit_range


def _tensor(array: np.ndarray, pad_to: int | None) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, 3)`` uint8 to ``(C, H, W)`` in ``[-1, 1]``, padded to ``pad_to`` square with -1."""
    image = to_unit_range(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    return image if pad_to is None else pad_square(image[None], pad_to)[0]


class FolderSource(Dataset):
    """The images of an image folder, read one by one: item ``i`` is ``(image (C, H, W), label)``.

    ``channels`` defaults to the first image's (1 for grayscale, else 3); without ``size`` every
    image must have the first image's height and width. Labels are ``-1`` for a flat folder.
    """

    def __init__(self, split: str, path: str, size: int | None = None, channels: int | None = None,
                 pad_to: int | None = None):
        _, classes, files = folder_files(split, path)
        self.paths = [p for group in files for p in group]
        self.labels = [k for k, group in enumerate(files) for _ in group] if classes else None
        self.num_classes = len(classes) or None
        first = read_image(self.paths[0], None if channels is None else "L" if channels == 1 else "RGB", size)
        self.channels = channels or (1 if first.ndim == 2 else 3)
        self.size, self.pad_to, self.first = size, pad_to, first.shape[:2]
        self.shape = tuple(_tensor(first, pad_to).shape)

    @property
    def _mode(self) -> str:
        return "L" if self.channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        array = read_image(self.paths[i], self._mode, self.size)
        if array.shape[:2] != self.first:
            raise ValueError(f"{self.paths[i]}: size {array.shape[:2]} differs from the first image's {self.first}; "
                             "pass size= to resize")
        return _tensor(array, self.pad_to), -1 if self.labels is None else int(self.labels[i])


class ArrowSource(Dataset):
    """A ``datasets`` data set saved to disk (``path``, or ``path/<split>`` of a ``DatasetDict``) with an
    ``image`` column (and optionally ``label``): item ``i`` is ``(image (C, H, W), label or -1)``."""

    def __init__(self, split: str, path: str, size: int | None = None, channels: int | None = None,
                 pad_to: int | None = None):
        import datasets

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise DatasetNotFoundError(f"arrow: no directory {folder}")
        data = datasets.load_from_disk(str(folder))
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise ValueError(f"arrow: {folder} has splits {sorted(data)}, not {split!r}")
            data = data[split]
        if "image" not in data.column_names:
            raise ValueError(f"arrow: {folder} has no 'image' column (it has {', '.join(data.column_names)})")
        self.data, self.size, self.pad_to = data, size, pad_to
        self.num_classes = None
        if "label" in data.column_names:
            feature = data.features["label"]
            self.num_classes = getattr(feature, "num_classes", None) or int(max(data["label"])) + 1
        self.channels = channels or (1 if data[0]["image"].mode in ("1", "L", "LA", "I", "I;16", "F") else 3)
        self.shape = tuple(self[0][0].shape)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        row = self.data[int(i)]
        img = row["image"].convert("L" if self.channels == 1 else "RGB")
        if self.size is not None:
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((self.size, self.size), Image.Resampling.BICUBIC)
        return _tensor(np.asarray(img), self.pad_to), int(row["label"]) if self.num_classes is not None else -1


def arrow(split: str, path: str, size: int | None = None, channels: int | None = None, hflip: bool = False) -> ImageData:
    """The ``arrow`` data set in memory: every image of ``ArrowSource`` stacked, ``(N, C, H, W)``."""
    source = ArrowSource(split, path, size, channels)
    images, labels = zip(*(source[i] for i in range(len(source))))
    if source.num_classes is None:
        return ImageData(torch.stack(images), hflip=hflip)
    return ImageData(torch.stack(images), torch.tensor(labels), source.num_classes, hflip=hflip)


STREAMABLE = {"folder": FolderSource, "arrow": ArrowSource}


class EpochBatches(Sampler):
    """Endless batches of indices into ``n`` items: epoch ``e`` is a permutation drawn from ``(seed, e)``,
    of which process ``rank`` of ``world`` takes every ``world``-th entry, cut into ``batch_size`` batches
    (the remainder dropped). ``start`` skips that many batches (a resume), computed, not drawn."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        self.per_epoch = (n // world) // batch_size
        if self.per_epoch < 1:
            raise ValueError(f"batch_size {batch_size} × {world} processes exceeds the data set's {n} images")
        self.n, self.batch_size, self.seed, self.rank, self.world, self.start = n, batch_size, seed, rank, world, start

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]))
        return torch.randperm(self.n, generator=g)[self.rank::self.world]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, batch = divmod(self.start, self.per_epoch)
        while True:
            order = self.permutation(epoch)
            for b in range(batch, self.per_epoch):
                yield order[b * self.batch_size:(b + 1) * self.batch_size].tolist()
            epoch, batch = epoch + 1, 0


def _collate(items):
    images, labels = zip(*items)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


class StreamBatches:
    """``(images, labels or None)`` batches of ``source`` on ``device``, ``EpochBatches`` order, ``workers``
    processes reading ahead. ``consumed`` counts the batches handed out: ``start`` of a resume."""

    def __init__(self, source: Dataset, batch_size: int, seed: int, rank: int, world: int, device,
                 workers: int = 2, start: int = 0, labelled: bool = True):
        sampler = EpochBatches(len(source), batch_size, seed, rank, world, start)
        self.loader = DataLoader(source, batch_sampler=sampler, num_workers=workers, collate_fn=_collate,
                                 pin_memory=torch.device(device).type == "cuda", persistent_workers=workers > 0,
                                 prefetch_factor=2 if workers else None)
        self.device, self.labelled, self.consumed = torch.device(device), labelled, start
        self._it = iter(self.loader)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, labels = next(self._it)
        self.consumed += 1
        images = images.to(self.device, non_blocking=True)
        return images, labels.to(self.device, non_blocking=True) if self.labelled else None
