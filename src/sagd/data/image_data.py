"""``ImageData``: a whole data set held in memory as one tensor in [-1, 1]."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


MAX_VALUES = 2**28
"""The most values (``N·C·H·W``) a generated data set may hold: 1 GiB in float32."""


def check_size(what: str, n: int, shape: tuple[int, ...]) -> None:
    """Refuse, before allocating, a generated data set of ``n`` images of ``shape`` larger than ``MAX_VALUES``."""
    values = n
    for s in shape:
        values *= s
    if values > MAX_VALUES:
        raise ValueError(f"{what}: n={n} images of shape {tuple(shape)} would hold {values:.3g} values; "
                         f"the limit is {MAX_VALUES:,} (1 GiB of float32)")


@dataclass(frozen=True)
class ImageData:
    """Images of one split, ready for training.

    Attributes:
        images: float32, shape ``(N, C, H, W)``, values in ``[-1, 1]`` (``grf`` data is Gaussian
            and may exceed that range slightly; it is never clipped).
        labels: int64, shape ``(N,)``, or ``None`` for unlabelled data.
        num_classes: the number of classes when ``labels`` is given, else ``None``.
        name: the spec the data came from, for logs and reports.
        hflip: whether a random horizontal flip is a sensible augmentation (clothes, faces,
            photographs: yes; digits: no).
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    num_classes: int | None = None
    name: str = ""
    hflip: bool = False

    def __post_init__(self):
        if not torch.is_tensor(self.images) or self.images.dtype != torch.float32 or self.images.dim() != 4:
            raise ValueError(
                f"images must be a float32 tensor (N, C, H, W), got {getattr(self.images, 'dtype', type(self.images))} "
                f"of shape {tuple(getattr(self.images, 'shape', ()))}"
            )
        if self.labels is not None:
            if self.labels.dtype != torch.int64 or tuple(self.labels.shape) != (len(self.images),):
                raise ValueError(
                    f"labels must be an int64 tensor of shape ({len(self.images)},), "
                    f"got {self.labels.dtype} of shape {tuple(self.labels.shape)}"
                )
            if self.num_classes is None:
                raise ValueError("num_classes is required when labels are given")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape ``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "ImageData":
        """The images (and labels) at ``index``: a slice, indices, or a boolean mask of shape ``(N,)``."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index)
            index = index if index.dtype == torch.bool else index.long()
        labels = None if self.labels is None else self.labels[index]
        return dataclasses.replace(self, images=self.images[index], labels=labels)
