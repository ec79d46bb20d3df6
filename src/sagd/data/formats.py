"""Readers for the on-disk formats of MNIST-like (IDX) and CIFAR-10 (pickled batches) data sets."""

from __future__ import annotations

import codecs
import gzip
import pickle
from pathlib import Path

import numpy as np

# IDX type codes (http://yann.lecun.com/exdb/mnist/), all big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (raw or ``.gz``) as a numpy array of the shape its header declares."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != dtype.itemsize * int(np.prod(shape)):
        raise ValueError(f"{path}: header declares shape {shape} but the file holds {len(data) - offset} bytes of data")
    return np.frombuffer(data, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: a CIFAR batch cannot run arbitrary code."""

    _reconstruct = np.empty(0).__reduce__()[0]
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not a numpy array") from None


def read_pickled_arrays(file, encoding: str = "bytes"):
    """A pickle of plain containers and numpy arrays from an open binary ``file``; anything else is refused."""
    return _ArrayUnpickler(file, encoding=encoding).load()


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: images uint8 ``(n, 3, 32, 32)`` and labels int64 ``(n,)``."""
    with open(path, "rb") as f:
        batch = read_pickled_arrays(f)
    try:
        data, labels = np.asarray(batch[b"data"], np.uint8), np.asarray(batch[b"labels"], np.int64)
    except (KeyError, TypeError):
        raise ValueError(f"{path} is not a CIFAR-10 batch (no b'data' and b'labels' entries)") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise ValueError(f"{path}: expected data (n, 3072) and labels (n,), got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels
