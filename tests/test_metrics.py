"""Tests for sagd.metrics: feature metrics against closed forms, spectral metrics against the
covariance they were drawn from, the classifier feature extractor and the reference cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from sagd import diffusion, metrics, spectral


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: more threads only add overhead, and much of it on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gaussian(n, f, shift=0.0, seed=0):
    return torch.randn(n, f, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def random_spd(f, seed):
    a = np.random.default_rng(seed).normal(size=(f, f))
    return a @ a.T / f + 0.1 * np.eye(f)


# ---------------------------------------------------------------- Fréchet distance

def test_fd_identical_sets_is_zero():
    f = gaussian(500, 16)
    assert metrics.fid_from_features(f, f) == pytest.approx(0.0, abs=1e-9)
    assert metrics.fid_from_features(f.numpy(), f) == pytest.approx(0.0, abs=1e-9)


def test_fd_diagonal_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    a, b = rng.uniform(0.1, 3, size=8), rng.uniform(0.1, 3, size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.paths
def test_fd_general_matches_sqrtm():
    mu1, mu2 = np.zeros(10), np.full(10, 0.3)
    c1, c2 = random_spd(10, 2), random_spd(10, 3)
    direct = 0.09 * 10 + np.trace(c1) + np.trace(c2) - 2 * np.trace(scipy.linalg.sqrtm(c1 @ c2)).real
    assert metrics.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(direct, rel=1e-9)


def test_fd_singular_covariance():
    """Fewer samples than dimensions: the covariance is singular and FD of equal covariances is |Δμ|²."""
    mu, cov = metrics.feature_stats(gaussian(5, 20))
    assert np.linalg.matrix_rank(cov) == 4
    assert metrics.frechet_distance(mu, cov, mu + 1.0, cov) == pytest.approx(20.0, rel=1e-8)


def test_fd_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="differ"):
        metrics.fid_from_features(gaussian(10, 3), gaussian(10, 4))


# ---------------------------------------------------------------- KID

@pytest.mark.paths
def test_kid_matches_direct_formula():
    x, y = gaussian(20, 5, seed=1), gaussian(20, 5, 0.5, seed=2)
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(20) for j in range(20) if i != j) / 380
    yy = sum(k(y[i], y[j]) for i in range(20) for j in range(20) if i != j) / 380
    xy = sum(k(x[i], y[j]) for i in range(20) for j in range(20)) / 400
    result = metrics.kid(x, y, subsets=3, subset_size=20)
    assert result.mean == pytest.approx(float(xx + yy - 2 * xy), rel=1e-10)
    assert result.se == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_kid_unbiased_for_same_distribution():
    values = [
        metrics.kid(gaussian(50, 10, seed=2 * r), gaussian(50, 10, seed=2 * r + 1), subsets=1, subset_size=50).mean
        for r in range(300)
    ]
    se = np.std(values, ddof=1) / math.sqrt(len(values))
    assert abs(np.mean(values)) < 3 * se


def test_kid_positive_for_shifted_distribution():
    g = torch.Generator().manual_seed(0)
    result = metrics.kid(gaussian(400, 10, seed=1), gaussian(400, 10, 0.5, seed=2), subsets=20, subset_size=200, generator=g)
    assert result.mean > 10 * result.se > 0
    same = metrics.kid(gaussian(400, 10, seed=3), gaussian(400, 10, seed=4), subsets=20, subset_size=200, generator=g)
    assert result.mean > 10 * abs(same.mean)


# ---------------------------------------------------------------- precision / recall

def test_precision_recall_identical_and_disjoint():
    x = gaussian(300, 2)
    assert metrics.precision_recall(x, x, k=3) == (1.0, 1.0)
    assert metrics.precision_recall(x, x.numpy() + 100.0, k=3) == (0.0, 0.0)


def test_precision_recall_subset():
    """Real data in two clusters, fake data in one of them: high precision, recall about 1/2."""
    a, b = gaussian(300, 2, seed=1), gaussian(300, 2, 20.0, seed=2)
    real = torch.cat([a, b])
    fake = gaussian(300, 2, seed=3)
    precision, recall = metrics.precision_recall(real, fake, k=3)
    assert precision > 0.95
    assert 0.4 < recall < 0.52


# ---------------------------------------------------------------- spectral metrics

def test_raps_white_noise_is_flat():
    x = torch.randn(4000, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    radii, power = metrics.raps(x)
    assert radii[0] == 0 and radii[1] == pytest.approx(1 / 32) and radii[-1] == pytest.approx(math.sqrt(2) / 2, abs=1 / 64)
    assert torch.allclose(power, torch.ones_like(power), atol=0.1)
    assert (power - 1).abs().mean() < 0.02


def test_raps_of_colored_noise_matches_weights():
    cov = spectral.power_law((1, 32, 32), alpha=-1)
    x = cov.sample(4000, generator=torch.Generator().manual_seed(1))
    radii, power = metrics.raps(x)
    radii_w, expected = metrics.radial_average(cov.weights[0])
    assert torch.equal(radii, radii_w)
    assert torch.allclose(power, expected, rtol=0.1)
    assert ((power / expected) - 1).abs().mean() < 0.03
    full = metrics.power_spectrum(x)
    assert ((full / cov.weights) - 1).abs().mean() < 0.05


def sinusoid(cycles, n=32, amplitude=1.0):
    """A vertical-stripe cosine with ``cycles`` periods across the image, shape ``(1, 1, n, n)``."""
    col = amplitude * torch.cos(2 * math.pi * cycles * torch.arange(n, dtype=torch.float64) / n)
    return col.expand(n, n).reshape(1, 1, n, n)


def test_band_energy_of_a_sinusoid():
    x = sinusoid(8)  # 8/32 = 0.25 cycles per pixel = 0.5 of Nyquist
    total = float(x.pow(2).sum())
    assert metrics.band_energy(x, 0.45, 0.55) == pytest.approx(total, rel=1e-12)
    assert metrics.band_energy(x, 0.2, 0.3, unit="cycles") == pytest.approx(total, rel=1e-12)
    assert metrics.band_energy(x, 0.0, 0.4) == pytest.approx(0.0, abs=1e-9)
    assert metrics.band_energy(x, 0.6, 1.5) == pytest.approx(0.0, abs=1e-9)
    assert metrics.relative_band_energy(sinusoid(8, amplitude=2.0), x, 0.45, 0.55) == pytest.approx(4.0)


@pytest.mark.paths
def test_band_energy_parseval():
    x = torch.randn(7, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert metrics.band_energy(x, 0.0, 2.0) == pytest.approx(float(x.double().pow(2).sum() / 7), rel=1e-10)


def test_log_spectral_distance():
    x = torch.randn(200, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert metrics.log_spectral_distance(x, x) == 0.0
    result = metrics.log_spectral_distance(2 * x, x, bands=[(0.0, 0.5), (0.5, 1.0)], unit="nyquist")
    assert set(result) == {"overall", "0-0.5", "0.5-1"}
    assert all(v == pytest.approx(10 * math.log10(4)) for v in result.values())
    emptied = spectral.band_stop((1, 16, 16), 0.5, 1.5, unit="nyquist").project(x)
    by_band = metrics.log_spectral_distance(emptied, x, bands=[(0.0, 0.4), (0.6, 1.4)], unit="nyquist")
    assert by_band["0-0.4"] < 1e-6 and by_band["0.6-1.4"] > 50


def test_snr_curves():
    ts = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    iso = diffusion.VPProcess(spectral.isotropic((1, 16, 16)))
    radii, snr = metrics.snr_curves(iso, torch.ones(1, 16, 16), ts)
    expected = (iso.alpha(ts) ** 2 / iso.sigma(ts) ** 2).reshape(-1, 1)
    assert snr.shape == (3, len(radii)) and torch.allclose(snr, expected.expand_as(snr))

    cov = spectral.power_law((1, 16, 16), alpha=-0.5)
    power = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    _, snr = metrics.snr_curves(diffusion.VPProcess(cov), power, ts)
    _, p_over_w = metrics.radial_average(power[0] / cov.weights[0])
    assert torch.allclose(snr, expected * p_over_w)

    stop = spectral.band_stop((1, 32, 32), 0.2, 0.3)
    radii, snr = metrics.snr_curves(diffusion.VPProcess(stop), torch.ones(1, 32, 32), ts)
    assert torch.isinf(snr[:, 8]).all() and torch.isfinite(snr[:, radii < 0.15]).all()


# ---------------------------------------------------------------- extractors

@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 8 - 1
    y = torch.tensor(d.target)
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.fixture(scope="module")
def trained(digits):
    return metrics.train_classifier(*digits, epochs=4, batch_size=64, seed=0, dataset="digits")


def test_classifier_learns_digits(trained, digits):
    model, acc = trained
    assert acc > 0.5  # chance is 0.1
    assert model.metadata["test_accuracy"] == acc
    assert model.metadata["data_sha256"] == metrics.sha256_images(digits[0])
    assert metrics.ClassifierFeatures(model)(digits[2]).shape == (len(digits[2]), 128)


def test_classifier_save_load_roundtrip(trained, digits, tmp_path):
    model, _ = trained
    path = tmp_path / "classifier.safetensors"
    metrics.save_classifier(model, path)
    loaded = metrics.load_classifier(path)
    assert loaded.config == model.config and loaded.metadata == model.metadata
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fa, fb = metrics.ClassifierFeatures(model), metrics.ClassifierFeatures.load(path)
    assert fa.name == fb.name and fa.name.startswith("classifier-digits-")
    assert torch.equal(fa(digits[2]), fb(digits[2]))
    assert [p.name for p in tmp_path.iterdir()] == ["classifier.safetensors"]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_classifier_any_input_size(shape):
    model = metrics.Classifier(shape[0], 10)
    x = torch.zeros(2, *shape)
    assert model(x).shape == (2, 10) and model.features(x).shape == (2, 128)


def test_pixel_and_random_projection_features():
    x = torch.rand(10, 3, 8, 8) * 2 - 1
    assert torch.equal(metrics.PixelFeatures()(x, batch_size=3), x.flatten(1))
    a, b = metrics.RandomProjectionFeatures(16, seed=1), metrics.RandomProjectionFeatures(16, seed=1)
    assert a.name == b.name and torch.equal(a(x), b(x)) and a(x).shape == (10, 16)
    assert not torch.equal(a(x), metrics.RandomProjectionFeatures(16, seed=2)(x))


# ---------------------------------------------------------------- reference cache and evaluation

class CountingFeatures(metrics.RandomProjectionFeatures):
    calls = 0

    def extract(self, images):
        CountingFeatures.calls += 1
        return super().extract(images)


def test_reference_stats_cache(tmp_path):
    x = torch.rand(60, 1, 8, 8) * 2 - 1
    ext = CountingFeatures(8, seed=0)
    first = metrics.reference_stats(ext, x, "digits/test", tmp_path)
    calls = CountingFeatures.calls
    second = metrics.reference_stats(ext, x, "digits/test", tmp_path)
    assert CountingFeatures.calls == calls  # read from disk
    assert first.path == second.path and first.path.name.startswith("digits_test--randproj-8-seed0--1x8x8--")
    for name in ("mu", "cov", "features"):
        assert np.array_equal(getattr(first, name), getattr(second, name))
    assert second.n == 60 and second.features.shape == (60, 8)
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]
    other = metrics.reference_stats(ext, x[:30], "digits/test", tmp_path, keep_features=False)
    assert other.path != first.path and other.features is None


def test_reference_stats_write_is_atomic(tmp_path, monkeypatch):
    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        metrics.reference_stats(metrics.PixelFeatures(), torch.zeros(4, 1, 4, 4), "x", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.paths
def test_evaluate_samples(tmp_path):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(120, 1, 8, 8, generator=g) * 2 - 1
    fake = torch.rand(120, 1, 8, 8, generator=g) * 1.5 - 1
    ext = metrics.RandomProjectionFeatures(8)
    same = metrics.evaluate_samples(real, real, ext, kid_subsets=5, kid_subset_size=50, generator=g)
    assert set(same) == {"fid", "kid_mean", "kid_se", "precision", "recall", "lsd"}
    assert same["fid"] == pytest.approx(0, abs=1e-9) and same["lsd"] == 0
    assert same["precision"] == same["recall"] == 1.0
    ref = metrics.reference_stats(ext, real, "rand", tmp_path)
    direct = metrics.evaluate_samples(fake, real, ext, kid_subsets=5, generator=torch.Generator().manual_seed(1))
    cached = metrics.evaluate_samples(fake, real, ext, reference=ref, kid_subsets=5, generator=torch.Generator().manual_seed(1))
    assert direct == cached  # the same features and float64 statistics, read back from the cache bit for bit
    assert direct["fid"] > 0.1 and direct["kid_mean"] > 0 and direct["lsd"] > 0.5
