"""A small ResNet classifier whose penultimate layer gives FID features on small datasets.

Inception-v3 sees 299×299 ImageNet photographs; on 28×28 or 8×8 grey images a classifier
trained on the dataset itself is the usual, cheaper feature space (features ``(N, widths[-1])``,
128 by default). Any input size and channel count works: global average pooling ends the trunk.
Checkpoints are safetensors with metadata: dataset name, sha256 of the uint8-quantised training
images, test accuracy and the architecture config.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ._arrays import as_images, sha256_images
from ._io import atomic_write
from .extractors import FeatureExtractor


class ResidualBlock(nn.Module):
    """``relu(x' + F(x))``: two 3×3 conv-BN layers, a 1×1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.shortcut(x) + self.bn2(self.conv2(h)))


class Classifier(nn.Module):
    """Stem conv, one stride-2 residual block per width, global average pooling, linear head.

    ``config`` (``in_channels``, ``num_classes``, ``widths``) rebuilds the architecture;
    ``metadata`` records how it was trained (``dataset``, ``data_sha256``, ``test_accuracy``, ...).
    """

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1 or in_channels < 1 or num_classes < 2:
            raise ValueError(f"need in_channels >= 1, num_classes >= 2, widths >= 1; got {in_channels}, {num_classes}, {widths}")
        self.config = {"in_channels": int(in_channels), "num_classes": int(num_classes), "widths": widths}
        self.metadata: dict = {}
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.blocks = nn.Sequential(*[
            ResidualBlock(c_in, c_out, stride=2) for c_in, c_out in zip(widths[:1] + widths[:-1], widths)
        ])
        self.head = nn.Linear(widths[-1], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, widths[-1])`` of images ``(N, C, H, W)`` in ``[-1, 1]``."""
        return self.blocks(self.stem(x)).mean(dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.head(self.features(x))


@torch.no_grad()
def accuracy(model: Classifier, images, labels, batch_size: int = 512) -> float:
    """Share of ``images`` ``(N, C, H, W)`` whose predicted class equals ``labels`` ``(N,)``."""
    model.eval()
    images, labels = as_images(images), torch.as_tensor(labels).long()
    device = next(model.parameters()).device
    correct = sum(
        int((model(images[i:i + batch_size].to(device)).argmax(1).cpu() == labels[i:i + batch_size]).sum())
        for i in range(0, len(images), batch_size)
    )
    return correct / len(images)


def train_classifier(
    images,
    labels,
    test_images,
    test_labels,
    epochs: int = 2,
    batch_size: int = 128,
    seed: int = 0,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    widths: Sequence[int] = (16, 32, 64, 128),
    dataset: str = "unknown",
    device: torch.device | str = "cpu",
) -> tuple[Classifier, float]:
    """Train a ``Classifier`` with AdamW and a one-cycle learning rate; returns it (eval mode) and its test accuracy.

    Args:
        images, test_images: ``(N, C, H, W)`` in ``[-1, 1]``; labels ``(N,)`` integer classes from 0.
        seed: fixes the initialisation and the batch order (the global RNG is left untouched).
        dataset: a name recorded in ``model.metadata`` and in the extractor's cache name.
    """
    images, test_images = as_images(images, "images"), as_images(test_images, "test_images")
    labels, test_labels = torch.as_tensor(labels).long(), torch.as_tensor(test_labels).long()
    if len(labels) != len(images) or len(test_labels) != len(test_images):
        raise ValueError("images and labels must have the same length (and test_images, test_labels)")
    if images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"train and test images differ in shape: {tuple(images.shape[1:])} vs {tuple(test_images.shape[1:])}")
    num_classes = int(max(labels.max(), test_labels.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Classifier(images.shape[1], num_classes, widths).to(device)
    g = torch.Generator().manual_seed(seed)
    steps = epochs * -(-len(images) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for i in range(0, len(images), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(images[idx].to(device)), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    acc = accuracy(model, test_images, test_labels)
    model.metadata = {
        "dataset": dataset,
        "data_sha256": sha256_images(images),
        "test_accuracy": acc,
        "epochs": int(epochs),
        "seed": int(seed),
    }
    return model, acc


def save_classifier(model: Classifier, path: str | os.PathLike) -> None:
    """Write ``model`` as safetensors (atomically) with its ``config`` and ``metadata`` as JSON metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"sagd": "classifier", "config": json.dumps(model.config), "metadata": json.dumps(model.metadata)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> Classifier:
    """Load a classifier written by ``save_classifier`` (eval mode, ``metadata`` restored)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("sagd") != "classifier":
        raise ValueError(f"{path} is not a sagd classifier checkpoint")
    model = Classifier(**json.loads(meta["config"]))
    model.load_state_dict(load_file(str(path)))
    model.metadata = json.loads(meta["metadata"])
    return model.to(device).eval()


def weights_sha256(model: nn.Module) -> str:
    """sha256 over the names, shapes, dtypes and bytes of the state dict."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        v = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(v.shape)}:{v.dtype}".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class ClassifierFeatures(FeatureExtractor):
    """Penultimate-layer features of a trained ``Classifier``, ``(N, widths[-1])``.

    ``name`` is ``classifier-<dataset>-<first 12 hex of the weights' sha256>``, so caches never
    mix features from different networks.
    """

    def __init__(self, model: Classifier, device: torch.device | str = "cpu"):
        self.model, self.device = model.to(device).eval(), device
        self.name = f"classifier-{model.metadata.get('dataset', 'unknown')}-{weights_sha256(model)[:12]}"

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> "ClassifierFeatures":
        return cls(load_classifier(path, device), device)

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(images)
