"""The user's own data: an image folder or a ``.npz`` file.

Both may hold separate splits (a ``train/`` and ``test/`` subfolder; ``train_images`` and
``test_images`` arrays). Without them the one set they hold is returned for every split.
Flips are off unless ``hflip=true``: whether they suit the content is the user's call.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .image_data import ImageData
from .locate import DatasetNotFoundError
from .transforms import to_nchw, to_unit_range

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
_GRAY_MODES = {"1", "L", "LA"}
_8_BIT_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
"""PIL modes read faithfully as 8-bit gray or RGB; others (16-bit, 32-bit int or float pixels) are refused
rather than clipped to 8 bits without a word."""
_SKIPPED_SHOWN = 5


class BadImage(ValueError):
    """An image file that cannot be read as an 8-bit image; the message names it."""


def _image_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _open(path: Path) -> Image.Image:
    """``path`` decoded in full; ``BadImage`` naming the file when it is unreadable, truncated or of an odd mode."""
    try:
        img = Image.open(path)
        img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise BadImage(f"image {str(path)!r} cannot be read ({type(e).__name__}: {e})") from None
    if img.mode not in _8_BIT_MODES:
        raise BadImage(f"image {str(path)!r} has PIL mode {img.mode!r} (16-bit, integer or float pixels), which "
                       f"would be clipped to 8 bits; save it as an 8-bit gray or RGB image")
    return img


def _read(img: Image.Image, mode: str, size: int | None) -> np.ndarray:
    """One image as uint8 ``(H, W)`` or ``(H, W, 3)``; with ``size``, centre-cropped square and resized."""
    with img:
        img = img.convert(mode)
        if size is not None:
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(img)


def folder(split: str, path: str, size: int | None = None, channels: int | None = None, hflip: bool = False,
           skip_bad: bool = False) -> ImageData:
    """Images under ``path``: ``(N, channels, H, W)`` (``H = W = size`` when given).

    Layouts: ``path/<class>/...`` (ImageFolder: sorted class folder names give labels 0, 1, ...)
    or a flat folder (unlabelled); ``path/<split>/`` is used when it exists. 8-bit images are
    read with PIL. ``channels`` defaults to 1 when every image is grayscale, else 3. Without
    ``size`` every image must have the same height and width. An unreadable, truncated or
    16-bit/float image is an error naming the file; ``skip_bad=true`` leaves such files out
    instead, with one warning line on stderr.
    """
    directory, classes, files = folder_files(split, path)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    files, arrays = _read_all(files, channels, size, skip_bad, directory)
    if channels is None:  # 1 when every image is gray; else gray ones are replicated, as PIL's L -> RGB does
        channels = 1 if all(a.ndim == 2 for a in arrays) else 3
    if channels == 3:
        arrays = [np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"folder {directory}: images have different sizes {sorted(shapes)[:3]}...; pass size= to resize them")
    images = to_unit_range(np.stack(arrays)[:, None] if channels == 1 else np.stack(arrays).transpose(0, 3, 1, 2))
    if not classes:
        return ImageData(images, hflip=hflip)
    labels = torch.cat([torch.full((len(group),), k, dtype=torch.int64) for k, group in enumerate(files)])
    return ImageData(images, labels, len(classes), hflip=hflip)


def folder_files(split: str, path: str) -> tuple[Path, list[Path], list[list[Path]]]:
    """The folder a ``folder`` data set reads (``path`` or ``path/<split>``), its class folders (sorted; none
    for a flat folder) and the image files of each class (of the folder itself when flat), sorted."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise DatasetNotFoundError(f"folder: no directory {directory}")
    if (directory / split).is_dir():
        directory = directory / split
    classes = sorted(d for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".") and _image_files(d))
    files = [_image_files(d) for d in classes] if classes else [_image_files(directory)]
    if not any(files):
        raise DatasetNotFoundError(f"folder: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {directory}")
    return directory, classes, files


def read_image(path: Path, mode: str | None, size: int | None) -> np.ndarray:
    """One file as uint8 ``(H, W)`` (gray) or ``(H, W, 3)``: ``mode`` ``"L"``, ``"RGB"``, or ``None`` for
    gray images gray and others RGB; ``BadImage`` naming an unreadable file."""
    img = _open(path)
    return _read(img, mode or ("L" if img.mode in _GRAY_MODES else "RGB"), size)


def _read_all(files: list[list[Path]], channels: int | None, size: int | None, skip_bad: bool,
              directory: Path) -> tuple[list[list[Path]], list[np.ndarray]]:
    """Read every file of ``files`` (groups of paths) as gray (``channels`` 1, or a gray image when ``None``) or
    RGB; with ``skip_bad`` leave the bad ones out, saying so. Returns the files kept and their arrays."""
    kept, arrays, bad = [], [], []
    for group in files:
        kept.append([])
        for p in group:
            try:
                img = _open(p)
                gray = channels == 1 or (channels is None and img.mode in _GRAY_MODES)
                arrays.append(_read(img, "L" if gray else "RGB", size))
                kept[-1].append(p)
            except BadImage as e:
                if not skip_bad:
                    raise ValueError(f"{e}; pass skip_bad=true to leave such files out") from None
                bad.append(p)
    if bad:
        shown = ", ".join(str(p.relative_to(directory)) for p in bad[:_SKIPPED_SHOWN])
        more = f" and {len(bad) - _SKIPPED_SHOWN} more" if len(bad) > _SKIPPED_SHOWN else ""
        print(f"sagd: warning: folder {directory}: skipped {len(bad)} unreadable image(s): {shown}{more}",
              file=sys.stderr)
    if not arrays:
        raise DatasetNotFoundError(f"folder: no readable image under {directory}")
    return kept, arrays


def npz(split: str, path: str, hflip: bool = False) -> ImageData:
    """Arrays from a ``.npz`` file: ``images`` (and optional ``labels``), or ``<split>_images`` (``<split>_labels``).

    ``images`` may be ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``; uint8 (0..255) or
    float (in ``[-1, 1]`` when its minimum is negative, else ``[0, 1]``). ``labels``: integers
    ``(N,)``, ``num_classes = max + 1``.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise DatasetNotFoundError(f"npz: no file {file}")
    with np.load(file, allow_pickle=False) as arrays:
        prefix = f"{split}_" if f"{split}_images" in arrays.files else ""
        if f"{prefix}images" not in arrays.files:
            raise ValueError(f"{file} has no 'images' or '{split}_images' array (it holds {', '.join(arrays.files)})")
        images = to_unit_range(to_nchw(arrays[f"{prefix}images"]))
        labels = arrays[f"{prefix}labels"] if f"{prefix}labels" in arrays.files else None
    if labels is None:
        return ImageData(images, hflip=hflip)
    if labels.dtype.kind not in "ui" or labels.shape != (len(images),) or labels.min() < 0:
        raise ValueError(f"{file}: labels must be non-negative integers of shape ({len(images)},), got {labels.dtype} {labels.shape}")
    return ImageData(images, torch.from_numpy(labels.astype(np.int64)), int(labels.max()) + 1, hflip=hflip)
