"""Data sets read from the user's disk in their standard layouts: Fashion-MNIST, MNIST (IDX), CIFAR-10.

Folder layouts recognised under ``root`` and ``$SAGD_DATA``: the IDX or batch files themselves,
torchvision's (``FashionMNIST/raw``, ``MNIST/raw``, ``cifar-10-batches-py``) and lower-case
names (``fashion-mnist``, ``mnist``). Fashion-MNIST is also found where Debian's
``dataset-fashion-mnist`` package installs it.
"""

from __future__ import annotations

import numpy as np
import torch

from .formats import read_cifar_batch, read_idx
from .image_data import ImageData
from .locate import ENV_VAR, find_dir, search_dirs
from .transforms import to_nchw, to_unit_range

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _idx_pair(name: str, split: str, dirs, how_to_get: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = _IDX_PREFIX[split]
    files = [(f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte") for kind in ("images-idx3", "labels-idx1")]
    _, (images_path, labels_path) = find_dir(name, split, dirs, files, how_to_get)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.shape != (len(images),):
        raise ValueError(f"{images_path} and {labels_path}: expected images (n, H, W) and labels (n,), got {images.shape} and {labels.shape}")
    return images, labels


def _labelled(images: np.ndarray, labels: np.ndarray, hflip: bool) -> ImageData:
    return ImageData(to_unit_range(to_nchw(images)), torch.from_numpy(labels.astype(np.int64)), 10, hflip=hflip)


def fashion_mnist(split: str, root: str | None = None) -> ImageData:
    """Fashion-MNIST: ``(60000 | 10000, 1, 28, 28)``, 10 classes; flips allowed (clothes)."""
    dirs = search_dirs(root, ("FashionMNIST/raw", "fashion-mnist", "fashion_mnist"), system=(DEBIAN_FASHION_MNIST,))
    how = (
        "Install it with `apt-get install dataset-fashion-mnist`, or set $SAGD_DATA (or --data-root) to a folder "
        "holding the IDX files or a torchvision-style FashionMNIST/raw folder."
    )
    return _labelled(*_idx_pair("fashion_mnist", split, dirs, how), hflip=True)


def mnist_idx(split: str, root: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's IDX files where the user keeps them: images ``uint8 (60000 | 10000, 28, 28)`` and labels
    (``packaged.mnist`` falls back to the registry package)."""
    dirs = search_dirs(root, ("MNIST/raw", "mnist"))
    how = f"Set ${ENV_VAR} (or --data-root) to a folder holding the IDX files or a torchvision-style MNIST/raw folder."
    return _idx_pair("mnist", split, dirs, how)


def cifar10(split: str, root: str | None = None) -> ImageData:
    """CIFAR-10 (python version): ``(50000 | 10000, 3, 32, 32)``, 10 classes; flips allowed."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    how = (
        f"Set ${ENV_VAR} (or --data-root) to the folder holding torchvision's cifar-10-batches-py "
        "(the python version from https://www.cs.toronto.edu/~kriz/cifar.html)."
    )
    _, paths = find_dir("cifar10", split, search_dirs(root, ("cifar-10-batches-py",)), [(n,) for n in names], how)
    batches = [read_cifar_batch(p) for p in paths]
    return _labelled(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]), hflip=True)
