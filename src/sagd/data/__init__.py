"""Data: offline-first data sets in [-1, 1], the training stream, band-confined corruptions.

    data = load_dataset("fashion_mnist", split="train", pad_to=32)   # ImageData
    for images, labels in random_batches(data, 128, generator): ...
    x_corrupt = corrupt_band(images, 0.3, 0.4, generator=generator)  # selective omission
"""

from .batches import random_batches
from .corrupt import corrupt_band
from .image_data import ImageData
from .load import DATASETS, load_dataset, parse_dataset_spec
from .locate import DatasetNotFoundError
from .synthetic import GRF_STD

__all__ = [
    "DATASETS",
    "DatasetNotFoundError",
    "GRF_STD",
    "ImageData",
    "corrupt_band",
    "load_dataset",
    "parse_dataset_spec",
    "random_batches",
]
