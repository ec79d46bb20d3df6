"""Precomputed latents on disk: safetensors shards and ``latents.json``, read whole or row by row.

``write_shards`` (called by ``sagd encode`` through ``sagd.latent.write_latents``) writes
``folder/shard-00000.safetensors``, ... each holding ``latents`` ``(n_k, c, h, w)`` float32 and, for
labelled sets, ``labels`` ``(n_k,)`` int64, and ``folder/latents.json`` (the data set spec, ``pad_to``,
the VAE, ``num_classes``, the image and latent shapes, ``n``, the shard names).

``LatentShards`` reads them as a map-style ``Dataset`` of ``(latent (c, h, w), label or -1)``, like the
image sources of ``data.stream``, so the same ``DataLoader`` stream serves both. safetensors'
``safe_open`` checks each shard's header; each process then memory-maps the shards and views their
tensors in place (``torch.frombuffer`` at the header's offsets), so a row costs a page fault and a copy
of its bytes, and ``__getitems__`` gathers a batch with one index per shard. The mappings are advised
``MADV_RANDOM``: a fault reads the row's pages, not a read-ahead window of megabytes around it (which
on a set larger than memory would read the file many times over). Drawing 3,328 random rows of 1 GB
of uncached (4, 8, 8) latents read 14 MB from disk so, against 856 MB through the mapping of
safetensors' ``get_tensor`` (same rows, this machine's 8 MB read-ahead). Measured alternatives:
``get_slice`` builds a new tensor on every call (6× the time of an mmap index for one row, 2× for a
batch of 64), ``get_tensor`` maps with the kernel's read-ahead, and the ``pread`` backend reads a
whole tensor to slice one row. What was read stays in the kernel's page cache, shared by the
processes and dropped under memory pressure; no process holds the split. Checking a header reads
one read-ahead window of its shard, once (8 MB here: 168 of the 172 MB the streamed run of
``benchmarks/results/stream_memory_latents.md`` read from its 20 shards).
"""

from __future__ import annotations

import bisect
import json
import mmap
from itertools import accumulate
from pathlib import Path
from typing import Iterable

import torch
from torch.utils.data import Dataset

from .image_data import ImageData

META = "latents.json"
DTYPES = {"F32": torch.float32, "I64": torch.int64}  # what shards hold: latents, labels


def write_shards(folder: str | Path, parts: Iterable[tuple[torch.Tensor, torch.Tensor | None]], meta: dict) -> Path:
    """Write each ``(latents (n_k, c, h, w) float32, labels (n_k,) int64 or None)`` of ``parts`` as one shard,
    then ``latents.json``: ``meta`` (``dataset``, ``pad_to``, ``vae``, ``num_classes``, ``image_shape``) with
    ``latent_shape``, ``n`` and ``shards`` added."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names, n, shape = [], 0, None
    for k, (latents, labels) in enumerate(parts):
        tensors = {"latents": latents.contiguous()} | ({} if labels is None else {"labels": labels.contiguous()})
        names.append(f"shard-{k:05d}.safetensors")
        save_file(tensors, folder / names[-1])
        n, shape = n + len(latents), list(latents.shape[1:])
    (folder / META).write_text(json.dumps({**meta, "latent_shape": shape, "n": n, "shards": names}, indent=1) + "\n")
    return folder


class LatentShards(Dataset):
    """The latents ``sagd encode`` wrote to ``folder`` for ``dataset`` padded to ``pad_to``: item ``i`` is
    ``(latent (c, h, w), label or -1)``; ``load()`` is the whole split in memory.

    Opening checks ``latents.json`` against the config and every shard's header (present, readable,
    float32 latents of ``latent_shape``, labels when the set has classes, the rows adding up to ``n``);
    a mismatch is a one-line ``ValueError`` naming ``latents``. The data are mapped on first read.
    """

    def __init__(self, folder: str | Path, dataset: str, pad_to: int | None = None):
        self.folder = Path(folder).expanduser()
        if not (self.folder / META).is_file():
            raise ValueError(f"latents: {str(self.folder)!r} holds no {META} (write it with sagd encode)")
        try:
            meta = json.loads((self.folder / META).read_text())
            names, self.shape, n = meta["shards"], tuple(meta["latent_shape"]), meta["n"]
            self.num_classes, encoded = meta["num_classes"], (meta["dataset"], meta["pad_to"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"latents: {str(self.folder / META)!r} is damaged ({e!r:.100}); rerun sagd encode") from None
        if encoded != (dataset.strip(), pad_to):
            raise ValueError(f"latents: {str(self.folder)!r} encodes {encoded[0]!r} padded to {encoded[1]}, "
                             f"the config has {dataset!r} padded to {pad_to}")
        self.paths = [self.folder / name for name in names]
        sizes = [self._rows(path) for path in self.paths]
        if sum(sizes) != n:
            raise ValueError(f"latents: the shards of {str(self.folder)!r} hold {sum(sizes)} latents, "
                             f"{META} says {n}; rerun sagd encode")
        self.starts = list(accumulate(sizes, initial=0))
        self._mapped = None  # [(latents, labels or None)] per shard, views of the files, mapped per process

    def _rows(self, path: Path) -> int:
        """The rows of one shard, after checking its header against ``latents.json``."""
        from safetensors import SafetensorError, safe_open

        if not path.is_file():
            raise ValueError(f"latents: shard {str(path)!r} is missing; rerun sagd encode")
        try:
            with safe_open(path, "pt") as f:
                keys, latents = set(f.keys()), f.get_slice("latents")
                shape, dtype = tuple(latents.get_shape()), latents.get_dtype()
                labels = f.get_slice("labels") if "labels" in keys else None
                labels = labels and (labels.get_dtype(), tuple(labels.get_shape()))
        except (SafetensorError, OSError) as e:
            raise ValueError(f"latents: shard {str(path)!r} is not a readable safetensors file ({e}); "
                             "rerun sagd encode") from None
        if (dtype, shape[1:], labels) != ("F32", self.shape, ("I64", shape[:1]) if self.num_classes else None):
            held = "no labels" if labels is None else f"{labels[0]} labels {labels[1]}"
            raise ValueError(f"latents: shard {str(path)!r} holds {dtype} latents {shape} and {held}, "
                             f"{META} says F32 latents (n, {', '.join(map(str, self.shape))}) and "
                             f"{'I64 labels (n,)' if self.num_classes else 'no labels'}")
        return shape[0]

    def __len__(self) -> int:
        return self.starts[-1]

    def __getstate__(self) -> dict:  # a worker started by spawn maps the files itself
        return {**self.__dict__, "_mapped": None}

    @property
    def mapped(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per shard, ``(latents (n_k, c, h, w), labels (n_k,) or None)``: views of the mapped file."""
        if self._mapped is None:
            self._mapped = [_map(path, self.num_classes is not None) for path in self.paths]
        return self._mapped

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """The items at ``indices``, gathered with one index per shard (``DataLoader`` calls it per batch)."""
        out: list = [None] * len(indices)
        by_shard: dict[int, list[int]] = {}
        for j, i in enumerate(indices):
            if not 0 <= i < len(self):
                raise IndexError(f"latent {i} of {len(self)}")
            by_shard.setdefault(bisect.bisect_right(self.starts, i) - 1, []).append(j)
        for k, js in by_shard.items():
            latents, labels = self.mapped[k]
            rows = torch.tensor([indices[j] - self.starts[k] for j in js])
            picked = latents[rows].unbind()
            ys = [-1] * len(js) if labels is None else labels[rows].tolist()
            for j, x, y in zip(js, picked, ys):
                out[j] = (x, y)
        return out

    def load(self, name: str = "") -> ImageData:
        """Every latent ``(N, c, h, w)`` (and label) in memory, as ``ImageData`` named ``name``."""
        latents = torch.cat([x for x, _ in self.mapped])
        labels = torch.cat([y for _, y in self.mapped]) if self.num_classes else None
        return ImageData(latents, labels, self.num_classes, name=name)


def _map(path: Path, labelled: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``latents`` (and ``labels``) of a checked shard as views of the file, mapped copy-on-write (never
    written) with random-access advice. A safetensors file is 8 bytes of header length ``N``, ``N`` bytes
    of JSON header (each tensor's ``dtype``, ``shape``, ``data_offsets`` into the data after it), the data."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    if hasattr(data, "madvise"):  # not on Windows
        data.madvise(mmap.MADV_RANDOM)

    def view(name: str) -> torch.Tensor:
        entry = header[name]
        begin, end = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        count = (end - begin) // dtype.itemsize
        return torch.frombuffer(data, dtype=dtype, count=count, offset=8 + size + begin).view(entry["shape"])

    return view("latents"), view("labels") if labelled else None
