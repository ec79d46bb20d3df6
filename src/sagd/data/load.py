"""``load_dataset``: a data set from a spec string such as ``grf:alpha=-1,size=32``.

A spec is ``name`` or ``name:key=value,...`` (values may not contain commas). Names and keys:

=================  ======================================================================
``fashion_mnist``  (no keys) IDX files: ``root``, ``$SAGD_DATA``, Debian's package folder
``mnist``          (no keys) IDX files (``root``, ``$SAGD_DATA``, e.g. ``MNIST/raw``), else ``make data``'s package
``quickdraw``      (no keys) Quick, Draw! 345 categories × 100 drawings (``make data``'s npm package)
``cifar10``        (no keys) ``cifar-10-batches-py`` under ``root`` or ``$SAGD_DATA``
``digits``         (no keys) scikit-learn's 8×8 digits
``lfw``            (no keys) scikit-image's ``lfw_subset`` faces
``patches``        ``n=4096, size=32``: colour patches of scikit-image's photographs
``grf``            ``alpha=-1, size=16, channels=1, n=4096, seed=0``: Gaussian random fields
``folder``         ``path`` (required), ``size``, ``channels=1|3``, ``hflip=false``, ``skip_bad=false``
``npz``            ``path`` (required), ``hflip=false``
``arrow``          ``path`` (required), ``size``, ``channels=1|3``, ``hflip=false``: ``datasets`` saved to disk
=================  ======================================================================
"""

from __future__ import annotations

import dataclasses
import inspect

from . import bundled, custom, disk, packaged, stream, synthetic
from .image_data import ImageData
from .transforms import pad_square

_LOADERS = {
    "fashion_mnist": disk.fashion_mnist,
    "mnist": packaged.mnist,
    "quickdraw": packaged.quickdraw,
    "cifar10": disk.cifar10,
    "digits": bundled.digits,
    "lfw": bundled.lfw,
    "patches": bundled.patches,
    "grf": synthetic.grf,
    "folder": custom.folder,
    "npz": custom.npz,
    "arrow": stream.arrow,
}
DATASETS = tuple(_LOADERS)
SPLITS = ("train", "test")
_INTS = {"n", "size", "channels", "seed"}
_FLOATS = {"alpha"}
_BOOLS = {"hflip", "skip_bad"}


def _value(spec: str, key: str, raw: str):
    if key in _BOOLS:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"dataset spec {spec!r}: {key} must be true or false, got {raw!r}")
        return raw.lower() in ("true", "1")
    try:
        return int(raw) if key in _INTS else float(raw) if key in _FLOATS else raw
    except ValueError:
        want = "an integer" if key in _INTS else "a number"
        raise ValueError(f"dataset spec {spec!r}: {key} must be {want}, got {raw!r}") from None


def parse_dataset_spec(spec: str) -> tuple[str, dict]:
    """Split a spec into ``(name, keyword arguments)``; raises ``ValueError`` naming the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"dataset spec must be a non-empty string, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in _LOADERS:
        raise ValueError(f"dataset spec {spec!r}: unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    params = inspect.signature(_LOADERS[name]).parameters
    accepted = [p for p in params if p not in ("split", "root")]
    kwargs = {}
    for item in filter(None, (i.strip() for i in rest.split(","))):
        key, eq, raw = (s.strip() for s in item.partition("="))
        if not eq:
            raise ValueError(f"dataset spec {spec!r}: expected key=value, got {item!r}")
        if key not in accepted:
            raise ValueError(
                f"dataset spec {spec!r}: unknown key {key!r}; {name} accepts {', '.join(accepted) or 'no keys'}"
            )
        if key in kwargs:
            raise ValueError(f"dataset spec {spec!r}: key {key!r} given twice")
        kwargs[key] = _value(spec, key, raw)
    missing = [p for p in accepted if params[p].default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        raise ValueError(f"dataset spec {spec!r}: {name} needs {', '.join(f'{m}=...' for m in missing)}")
    return name, kwargs


def load_dataset(spec: str, split: str = "train", root: str | None = None, pad_to: int | None = None) -> ImageData:
    """Load one split of a data set, images ``(N, C, H, W)`` float32 in ``[-1, 1]``.

    Args:
        spec: ``name`` or ``name:key=value,...`` (see the module docstring for names and keys).
        split: ``"train"`` or ``"test"``.
        root: a folder searched first for on-disk data sets (the CLI's ``--data-root``);
            ``$SAGD_DATA`` is searched next. Nothing is ever downloaded.
        pad_to: pad every image symmetrically with -1 (background) to ``pad_to × pad_to``
            (e.g. 28 → 32 for UNets); smaller than the images is an error.

    Raises:
        DatasetNotFoundError: the data are not on this machine (the message says where it looked).
        ValueError: a bad spec, split or ``pad_to``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    name, kwargs = parse_dataset_spec(spec)
    loader = _LOADERS[name]
    if "root" in inspect.signature(loader).parameters:
        kwargs["root"] = root
    try:
        data = loader(split, **kwargs)
        images = data.images if pad_to is None else pad_square(data.images, int(pad_to))
    except ValueError as e:
        raise ValueError(f"dataset spec {spec!r}: {e}") from None
    return dataclasses.replace(data, images=images, name=spec.strip())
