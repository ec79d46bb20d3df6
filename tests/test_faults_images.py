"""Damaged images in a folder data set: the file named (one line), or left out with a warning (``skip_bad=true``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sagd.cli import main
from sagd.data import load_dataset

AREA = "Damaged or foreign inputs"


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    (Image.fromarray(array) if mode is None else Image.fromarray(array, mode)).save(buffer, "PNG")
    return buffer.getvalue()


def tiff_float() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), "F").save(buffer, "TIFF")
    return buffer.getvalue()


GOOD = png(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
NOISE = png(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
BAD = {
    "a `.png` that is not an image": (b"this is not a png file" * 4, "cannot be read (UnidentifiedImageError"),
    "an empty `.png`": (b"", "cannot be read (UnidentifiedImageError"),
    "a truncated `.png` (cut in half)": (NOISE[: len(NOISE) // 2], "cannot be read (OSError: image file is truncated"),
    "a 16-bit `.png` (mode I;16)": (png((np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)),
                                    "has PIL mode 'I;16' (16-bit, integer or float pixels), which would be clipped"),
    "a float `.tif` (mode F)": (tiff_float(), "has PIL mode 'F'"),
}
SUFFIX = {"a float `.tif` (mode F)": ".tif"}


def folder_with(tmp_path, what: str):
    for i in range(3):
        (tmp_path / f"good{i}.png").write_bytes(GOOD)
    bad = tmp_path / f"bad{SUFFIX.get(what, '.png')}"
    bad.write_bytes(BAD[what][0])
    return bad


@pytest.mark.parametrize("what", BAD)
def test_a_bad_image_is_named_or_skipped(tmp_path, capsys, what, fault):
    bad = folder_with(tmp_path, what)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--dataset", f"folder:path={tmp_path}", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"image {str(bad)!r} {BAD[what][1]}" in err and err.rstrip().endswith("pass skip_bad=true to leave such files out")
    fault(AREA, f"{what} in a folder data set", f"exit 2: `{err.strip().replace(str(tmp_path) + '/', '')}`")

    data = load_dataset(f"folder:path={tmp_path},skip_bad=true")
    warning = capsys.readouterr().err.strip()
    assert data.images.shape == (3, 1, 8, 8)
    assert warning == f"sagd: warning: folder {tmp_path}: skipped 1 unreadable image(s): {bad.name}"
    fault(AREA, f"the same with `folder:...,skip_bad=true`",
          f"the 3 good images load; `{warning.replace(str(tmp_path), 'DATA')}`")


def test_skip_bad_with_nothing_readable_is_one_line(tmp_path):
    for i in range(7):
        (tmp_path / f"{i}.png").write_bytes(b"junk")
    with pytest.raises(FileNotFoundError, match="no readable image under"):
        load_dataset(f"folder:path={tmp_path},skip_bad=true")


def test_odd_but_8_bit_modes_load(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(np.dstack([rgb, np.full((8, 8), 128, np.uint8)])).save(tmp_path / "rgba.png")
    (tmp_path / "gray.png").write_bytes(GOOD)
    data = load_dataset(f"folder:path={tmp_path}")
    assert data.images.shape == (4, 3, 8, 8) and data.images.abs().max() <= 1
