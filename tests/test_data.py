"""Tests for sagd.data: every loader on real or format-faithful fake data, specs, corruption, batches."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sagd import spectral
from sagd.data import (
    GRF_STD,
    DatasetNotFoundError,
    ImageData,
    corrupt_band,
    load_dataset,
    parse_dataset_spec,
    random_batches,
)
from sagd.data import bundled, disk
from sagd.data.formats import read_cifar_batch, read_idx

DEBIAN_FASHION = Path(disk.DEBIAN_FASHION_MNIST)


@pytest.fixture(autouse=True)
def no_env_data(monkeypatch):
    """Tests see only the data they set up (plus Debian's system folder)."""
    monkeypatch.delenv("SAGD_DATA", raising=False)


def check_images(data: ImageData, shape, n=None):
    assert data.images.dtype == torch.float32
    assert data.images.shape[1:] == shape and data.shape == shape
    assert n is None or len(data) == n
    assert data.images.min() >= -1 and data.images.max() <= 1
    if data.labels is not None:
        assert data.labels.dtype == torch.int64 and data.labels.shape == (len(data),)
        assert 0 <= data.labels.min() and data.labels.max() < data.num_classes


# ---------------------------------------------------------------- format writers for fake data
def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(folder: Path, n_train=5, n_test=3, gz=True) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = np.arange(n) % 10
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = (images, labels)
    return arrays


def write_cifar(folder: Path, per_batch=4) -> None:
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        data = np.zeros((per_batch, 3, 1024), np.uint8)
        data[:, 0], data[:, 1], data[:, 2] = 255, 0, k  # R, G, B planes in CIFAR's row layout
        batch = {b"data": data.reshape(per_batch, 3072), b"labels": [k] * per_batch, b"batch_label": name.encode()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


# ---------------------------------------------------------------- on-disk data sets
@pytest.mark.skipif(
    not (DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed at {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_from_debian_package():
    test = load_dataset("fashion_mnist", split="test")
    check_images(test, (1, 28, 28), n=10_000)
    assert test.num_classes == 10 and torch.bincount(test.labels).tolist() == [1000] * 10
    assert test.images.min() == -1 and test.images.max() == 1 and test.hflip
    assert len(load_dataset("fashion_mnist", split="train")) == 60_000
    padded = load_dataset("fashion_mnist", split="test", pad_to=32)
    assert padded.images.shape == (10_000, 1, 32, 32)
    assert torch.equal(padded.images[:, :, 2:30, 2:30], test.images)


def test_mnist_torchvision_layout_from_root(tmp_path):
    arrays = write_mnist(tmp_path / "MNIST" / "raw")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data = load_dataset("mnist", split=split, root=str(tmp_path))
        images, labels = arrays[prefix]
        check_images(data, (1, 28, 28), n=len(images))
        assert torch.allclose(data.images[:, 0], torch.from_numpy(images / 127.5 - 1).float(), atol=1e-6)
        assert data.images[0, 0, 0, 0] == -1 and data.images[0, 0, 0, 1] == 1
        assert data.labels.tolist() == labels.tolist() and data.num_classes == 10 and not data.hflip


def test_mnist_raw_idx_from_env(tmp_path, monkeypatch):
    write_mnist(tmp_path / "mnist", gz=False)
    monkeypatch.setenv("SAGD_DATA", str(tmp_path))
    assert len(load_dataset("mnist", split="test")) == 3


def test_fashion_mnist_from_root_prefers_root(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", n_test=4)
    assert len(load_dataset("fashion_mnist", split="test", root=str(tmp_path))) == 4


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short-idx"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 9)
    with pytest.raises(ValueError, match="declares shape"):
        read_idx(short)


def test_cifar10_python_batches(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    train = load_dataset("cifar10", root=str(tmp_path))
    test = load_dataset("cifar10", split="test", root=str(tmp_path))
    check_images(train, (3, 32, 32), n=20)
    check_images(test, (3, 32, 32), n=4)
    assert train.labels.tolist() == [k for k in range(5) for _ in range(4)] and test.labels.tolist() == [5] * 4
    assert (train.images[:, 0] == 1).all() and (train.images[:, 1] == -1).all()
    assert torch.allclose(test.images[:, 2], torch.tensor(5 / 127.5 - 1))
    assert train.hflip and train.num_classes == 10


def test_cifar_reader_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load .*print"):
        read_cifar_batch(path)


@pytest.mark.parametrize("spec", ["fashion_mnist", "mnist", "cifar10"])
def test_missing_dataset_says_where_it_looked(spec, tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "DEBIAN_FASHION_MNIST", str(tmp_path / "debian"))
    monkeypatch.setenv("SAGD_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(spec, root=str(tmp_path / "root"))
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError) and "\n" not in message
    assert f"{spec} (train split) not found" in message
    assert str(tmp_path / "root") in message and str(tmp_path / "env") in message and "SAGD_DATA" in message
    if spec == "fashion_mnist":
        assert str(tmp_path / "debian") in message and "apt-get install dataset-fashion-mnist" in message


# ---------------------------------------------------------------- bundled data sets
def test_digits_split_is_deterministic_and_disjoint():
    train, test = load_dataset("digits"), load_dataset("digits", split="test")
    check_images(train, (1, 8, 8), n=1438)
    check_images(test, (1, 8, 8), n=359)
    assert train.images.min() == -1 and train.images.max() == 1 and not train.hflip
    assert torch.equal(load_dataset("digits").images, train.images)
    train_index, test_index = bundled._split_indices(1797, "train"), bundled._split_indices(1797, "test")
    assert sorted(np.concatenate([train_index, test_index]).tolist()) == list(range(1797))
    assert set(torch.bincount(test.labels).tolist()) <= set(range(20, 60))  # every class in the test split


def test_lfw_faces():
    train, test = load_dataset("lfw"), load_dataset("lfw", split="test")
    check_images(train, (1, 25, 25), n=80)
    check_images(test, (1, 25, 25), n=20)
    assert train.labels is None and train.hflip
    assert torch.equal(load_dataset("lfw", split="test").images, test.images)


def test_patches_options_determinism_and_natural_spectrum():
    data = load_dataset("patches:n=256,size=32")
    check_images(data, (3, 32, 32), n=256)
    assert data.hflip and data.labels is None
    assert torch.equal(load_dataset("patches:n=256,size=32").images, data.images)
    assert not torch.equal(load_dataset("patches:n=256,size=32", split="test").images, data.images)
    assert load_dataset("patches:n=5,size=48").images.shape == (5, 3, 48, 48)
    power = torch.fft.fftn(data.images - data.images.mean((2, 3), keepdim=True), dim=(2, 3)).abs().pow(2).mean((0, 1))
    r = spectral.radial_frequency((32, 32))
    low, high = power[(r > 0) & (r <= 0.1)].mean(), power[r >= 0.4].mean()
    assert low > 30 * high  # natural images: power falls steeply with frequency


def test_patches_size_too_large():
    with pytest.raises(ValueError, match="larger than the test region"):
        load_dataset("patches:size=200", split="test")


# ---------------------------------------------------------------- synthetic fields
def test_grf_is_the_power_law_gaussian_unclipped():
    data = load_dataset("grf:alpha=-1,size=16,n=4096")
    assert data.images.shape == (4096, 1, 16, 16) and data.images.dtype == torch.float32 and not data.hflip
    assert data.images.abs().max() > 1  # not clipped
    assert data.images.std().item() == pytest.approx(GRF_STD, rel=0.02)
    power = torch.fft.fftn(data.images.double(), dim=(2, 3), norm="ortho").abs().pow(2).mean(0)
    expected = GRF_STD**2 * spectral.power_law((1, 16, 16), -1.0).weights
    assert ((power / expected).mean() - 1).abs() < 0.02 and ((power / expected - 1).abs() < 0.15).all()


def test_grf_seeds_and_splits():
    a = load_dataset("grf:alpha=0.5,size=8,channels=3,n=10,seed=3")
    assert a.images.shape == (10, 3, 8, 8)
    assert torch.equal(a.images, load_dataset("grf:alpha=0.5,size=8,channels=3,n=10,seed=3").images)
    assert not torch.equal(a.images, load_dataset("grf:alpha=0.5,size=8,channels=3,n=10,seed=4").images)
    assert not torch.equal(a.images, load_dataset("grf:alpha=0.5,size=8,channels=3,n=10,seed=3", split="test").images)


# ---------------------------------------------------------------- the user's own data
def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_imagefolder_layout(tmp_path):
    for k, name in enumerate(["cat", "dog"]):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", np.full((10, 12, 3), 255 * k, np.uint8))
    data = load_dataset(f"folder:path={tmp_path}")
    check_images(data, (3, 10, 12), n=6)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1] and data.num_classes == 2 and not data.hflip
    assert (data.images[:3] == -1).all() and (data.images[3:] == 1).all()
    gray = load_dataset(f"folder:path={tmp_path},size=8,channels=1,hflip=true")
    check_images(gray, (1, 8, 8), n=6)
    assert gray.hflip


def test_folder_flat_grayscale_and_splits(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for i in range(n):
            write_png(tmp_path / split / f"{i}.png", np.full((6, 6), 40 * i, np.uint8))
    train = load_dataset(f"folder:path={tmp_path}")
    test = load_dataset(f"folder:path={tmp_path}", split="test")
    check_images(train, (1, 6, 6), n=4)
    check_images(test, (1, 6, 6), n=2)
    assert train.labels is None and train.images[1, 0, 0, 0] == pytest.approx(40 / 127.5 - 1)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no directory"):
        load_dataset(f"folder:path={tmp_path / 'missing'}")
    with pytest.raises(DatasetNotFoundError, match="no image files"):
        load_dataset(f"folder:path={tmp_path}")
    write_png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "b.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(ValueError, match="different sizes.*pass size="):
        load_dataset(f"folder:path={tmp_path}")
    assert load_dataset(f"folder:path={tmp_path},size=4").images.shape == (2, 1, 4, 4)


def test_npz_layouts_and_ranges(tmp_path):
    rng = np.random.default_rng(0)
    cases = {
        "nhwc_uint8": (rng.integers(0, 256, (5, 8, 8, 3)).astype(np.uint8), (3, 8, 8)),
        "nchw_unit": (rng.random((5, 3, 8, 8)).astype(np.float32), (3, 8, 8)),
        "nhw_signed": (rng.uniform(-1, 1, (5, 8, 8)), (1, 8, 8)),
    }
    for name, (images, shape) in cases.items():
        np.savez(tmp_path / f"{name}.npz", images=images, labels=np.array([0, 1, 2, 1, 0]))
        data = load_dataset(f"npz:path={tmp_path / name}.npz")
        check_images(data, shape, n=5)
        assert data.num_classes == 3 and data.labels.tolist() == [0, 1, 2, 1, 0]
    signed = load_dataset(f"npz:path={tmp_path}/nhw_signed.npz").images[:, 0]
    assert torch.allclose(signed, torch.from_numpy(cases["nhw_signed"][0]).float())
    np.savez(tmp_path / "split.npz", train_images=np.zeros((3, 4, 4), np.uint8), test_images=np.zeros((2, 4, 4), np.uint8))
    assert len(load_dataset(f"npz:path={tmp_path}/split.npz", split="test")) == 2
    assert load_dataset(f"npz:path={tmp_path}/split.npz").labels is None


def test_npz_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no file"):
        load_dataset(f"npz:path={tmp_path}/missing.npz")
    for name, images, pattern in [
        ("range", np.full((2, 4, 4), 3.0), "must lie in"),
        ("ambiguous", np.zeros((2, 3, 8, 3), np.uint8), "cannot tell the channel axis"),
    ]:
        np.savez(tmp_path / f"{name}.npz", images=images)
        with pytest.raises(ValueError, match=pattern):
            load_dataset(f"npz:path={tmp_path}/{name}.npz")
    np.savez(tmp_path / "nokey.npz", x=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="no 'images'.*holds x"):
        load_dataset(f"npz:path={tmp_path}/nokey.npz")


# ---------------------------------------------------------------- specs and padding
def test_parse_dataset_spec():
    assert parse_dataset_spec("digits") == ("digits", {})
    assert parse_dataset_spec(" grf : alpha = -0.5 , n=8 ") == ("grf", {"alpha": -0.5, "n": 8})
    assert parse_dataset_spec("folder:path=/x y,hflip=true,size=4") == ("folder", {"path": "/x y", "hflip": True, "size": 4})


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ("", "non-empty"),
        ("imagenet", "unknown dataset 'imagenet'; known: fashion_mnist, mnist"),
        ("grf:beta=1", "unknown key 'beta'; grf accepts alpha, size, channels, n, seed"),
        ("digits:n=3", "unknown key 'n'; digits accepts no keys"),
        ("grf:alpha", "expected key=value, got 'alpha'"),
        ("grf:n=many", "n must be an integer, got 'many'"),
        ("grf:alpha=x", "alpha must be a number, got 'x'"),
        ("folder:path=/x,hflip=maybe", "hflip must be true or false"),
        ("grf:n=1,n=2", "key 'n' given twice"),
        ("folder", "folder needs path=..."),
        ("grf:n=0", "'grf:n=0'.*n, size and channels must be >= 1"),
    ],
)
def test_bad_specs(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_dataset(spec)


def test_bad_split_and_pad():
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("digits", split="val")
    with pytest.raises(ValueError, match="pad_to=6 is smaller than the images"):
        load_dataset("digits", pad_to=6)


def test_pad_to_centres_with_background():
    plain = load_dataset("digits", split="test")
    even, odd = load_dataset("digits", split="test", pad_to=12), load_dataset("digits", split="test", pad_to=11)
    assert even.images.shape == (359, 1, 12, 12) and odd.images.shape == (359, 1, 11, 11)
    assert torch.equal(even.images[..., 2:10, 2:10], plain.images)
    assert torch.equal(odd.images[..., 1:9, 1:9], plain.images)
    border = torch.ones(12, 12, dtype=torch.bool)
    border[2:10, 2:10] = False
    assert (even.images[..., border] == -1).all()
    assert torch.equal(even.labels, plain.labels) and even.name == "digits"


# ---------------------------------------------------------------- ImageData
def test_image_data_container():
    data = ImageData(torch.zeros(4, 1, 2, 2), torch.arange(4), 4, name="toy")
    assert len(data) == 4 and data.shape == (1, 2, 2)
    assert data.subset(torch.tensor([True, False, True, False])).labels.tolist() == [0, 2]
    sub = data.subset([3, 1])
    assert sub.labels.tolist() == [3, 1] and sub.name == "toy" and len(data.subset(slice(0, 2))) == 2
    with pytest.raises(ValueError, match="float32"):
        ImageData(torch.zeros(4, 1, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_classes"):
        ImageData(torch.zeros(4, 1, 2, 2), torch.arange(4))


# ---------------------------------------------------------------- band-confined corruption
def test_corrupt_band_energy_is_inside_the_band():
    x = torch.zeros(16, 2, 32, 32)
    g = torch.Generator().manual_seed(0)
    added = corrupt_band(x, 0.3, 0.4, generator=g)
    assert added.shape == x.shape and added.dtype == x.dtype
    power = torch.fft.fftn(added.double(), dim=(2, 3)).abs().pow(2)
    band = spectral.band_pass((2, 32, 32), 0.3, 0.4, unit="nyquist").support
    assert power[:, band].sum() / power.sum() > 1 - 1e-9
    std = added.double().std(dim=(2, 3), correction=0)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-5)


def test_corrupt_band_gamma_offset_and_determinism():
    x = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    a = corrupt_band(x, 0.1, 0.2, gamma=0.5, generator=torch.Generator().manual_seed(1))
    b = corrupt_band(x, 0.1, 0.2, gamma=0.5, generator=torch.Generator().manual_seed(1))
    assert a.dtype == torch.float64 and torch.equal(a, b)
    std = (a - x).std(dim=(2, 3), correction=0)
    assert torch.allclose(std, torch.full_like(std, 0.5), atol=1e-6)
    cycles = corrupt_band(x, 0.05, 0.1, unit="cycles", generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(cycles, a)


# ---------------------------------------------------------------- the training stream
@pytest.mark.paths
def test_random_batches_are_reproducible_and_resumable():
    data = load_dataset("digits", split="test")
    first = random_batches(data, 32, torch.Generator().manual_seed(0))
    again = random_batches(data, 32, torch.Generator().manual_seed(0))
    for _ in range(3):
        (x1, y1), (x2, y2) = next(first), next(again)
        assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.shape == (32, 1, 8, 8)
    g = torch.Generator().manual_seed(5)
    stream = random_batches(data, 32, g)
    next(stream)
    state = g.get_state()
    expected = [next(stream) for _ in range(2)]
    g2 = torch.Generator()
    g2.set_state(state)
    resumed = random_batches(data, 32, g2)
    for (x1, y1), (x2, y2) in zip(expected, [next(resumed) for _ in range(2)]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_random_batches_flip_and_alignment():
    images = torch.rand(50, 1, 4, 4) * 2 - 1
    data = ImageData(images, torch.arange(50), 50, hflip=True)
    x, y = next(random_batches(data, 50, torch.Generator().manual_seed(0)))
    assert sorted(y.tolist()) == list(range(50))  # distinct within a batch
    same = (x == images[y]).flatten(1).all(1)
    flipped = (x == images[y].flip(-1)).flatten(1).all(1)
    assert (same | flipped).all() and 10 < flipped.sum() < 40
    x, y = next(random_batches(data, 50, torch.Generator().manual_seed(0), hflip=False))
    assert torch.equal(x, images[y])
    unlabelled = next(random_batches(ImageData(images), 8, torch.Generator()))
    assert unlabelled[1] is None
    with pytest.raises(ValueError, match="batch_size"):
        next(random_batches(data, 51, torch.Generator()))
