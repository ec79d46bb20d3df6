"""Data sets that ship inside installed wheels (scikit-learn, scikit-image): always available offline.

Every split is deterministic: fixed permutations and fixed seeds, independent of any global RNG.
"""

from __future__ import annotations

import numpy as np
import torch

from .image_data import ImageData, check_size
from .transforms import to_nchw, to_unit_range

TEST_FRACTION = 0.2
# scikit-image photographs bundled in its wheel (no download needed): natural scenes with 1/f spectra.
PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "rocket")


def _split_indices(n: int, split: str) -> np.ndarray:
    """A fixed permutation of ``range(n)``: the last ``TEST_FRACTION`` is the test split."""
    order = np.random.default_rng(0).permutation(n)
    n_test = round(n * TEST_FRACTION)
    return np.sort(order[n - n_test:] if split == "test" else order[: n - n_test])


def digits(split: str) -> ImageData:
    """scikit-learn's 8×8 digits (values 0–16): ``(1438 | 359, 1, 8, 8)``, 10 classes, no flips."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = _split_indices(len(bunch.images), split)
    images = torch.from_numpy((bunch.images[keep] / 8.0 - 1.0).astype(np.float32))[:, None]
    return ImageData(images, torch.from_numpy(bunch.target[keep].astype(np.int64)), 10, hflip=False)


def lfw(split: str) -> ImageData:
    """The 100 faces of scikit-image's ``lfw_subset``: ``(80 | 20, 1, 25, 25)``, unlabelled, flips allowed.

    ``lfw_subset`` holds 100 faces followed by 100 background crops; only the faces are used.
    """
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]
    return ImageData(to_unit_range(to_nchw(faces[_split_indices(len(faces), split)])), hflip=True)


def patches(split: str, n: int = 4096, size: int = 32) -> ImageData:
    """``n`` random ``size``×``size`` colour patches of scikit-image's bundled photographs: ``(n, 3, size, size)``.

    Train patches come from the left 80 % of every photograph, test patches from the right 20 %,
    so the splits never share pixels. Each photograph is drawn in proportion to its number of
    patch positions. Unlabelled, flips allowed.
    """
    import skimage.data

    if n < 1 or size < 1:
        raise ValueError(f"n and size must be >= 1, got n={n}, size={size}")
    regions = []
    for name in PHOTOGRAPHS:
        photo = getattr(skimage.data, name)()
        cut = round(photo.shape[1] * (1 - TEST_FRACTION))
        region = photo[:, cut:] if split == "test" else photo[:, :cut]
        if min(region.shape[:2]) < size:
            raise ValueError(f"size={size} is larger than the {split} region {region.shape[:2]} of {name!r}")
        regions.append(region)
    check_size("patches", n, (3, size, size))
    rng = np.random.default_rng(0 if split == "train" else 1)
    positions = np.array([(r.shape[0] - size + 1) * (r.shape[1] - size + 1) for r in regions])
    which = rng.choice(len(regions), size=n, p=positions / positions.sum())
    out = np.empty((n, size, size, 3), np.uint8)
    for i, k in enumerate(which):
        top = rng.integers(regions[k].shape[0] - size + 1)
        left = rng.integers(regions[k].shape[1] - size + 1)
        out[i] = regions[k][top : top + size, left : left + size]
    return ImageData(to_unit_range(out.transpose(0, 3, 1, 2)), hflip=True)
