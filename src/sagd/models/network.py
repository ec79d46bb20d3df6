"""``Network``: a diffusers backbone (UNet or DiT) as the ``(x, t) -> output`` map the diffusion code calls.

The wrapper owns three conventions so that nothing else has to:

* time: ``t ∈ [0, 1]`` is fed to the backbone's sinusoidal embedding as ``1000 t`` (DDPM's scale);
* size: inputs are padded circularly up to the backbone's multiple (``backbones.multiple``:
  ``2**downsamplings`` for a UNet, the patch size for a DiT, whose input must also be square) and
  the output is cropped back. Circular because SAGD noise is circulant: periodic, like the FFT that
  colours it. A UNet's convolutions are local, so the wrapped border reads as a continuation of the
  image. A DiT has no convolution border: its patches attend globally, and where it sits in the
  image comes from fixed 2-D sin-cos position embeddings, which are not periodic. It is therefore
  not translation-equivariant on the torus the noise lives on and must learn the wrap-around (the
  circulant noise's correlations across opposite edges) from data;
* classes: with ``num_classes`` set, the backbone has ``num_classes + 1`` class embeddings, the
  last being the "null" class that classifier-free guidance uses for the unconditional model.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import backbones

TIME_SCALE = 1000.0


class Network(nn.Module):
    """``(x, t, labels) -> output`` of the same shape as ``x``.

    Args:
        model: a key of ``models.PRESETS``, a diffusers config ``.json`` file, such a config as a
            dict (``backbones.backbone_config``), or a built diffusers backbone to wrap as it is.
        shape: the sample shape ``(C, H, W)``.
        num_classes: enable class conditioning with that many classes (plus the null class).

    ``x``: ``(B, C, H, W)``; ``t``: ``(B,)`` floats in ``[0, 1]``; ``labels``: ``(B,)`` int64 in
    ``[0, num_classes]`` (``num_classes`` is the null class), or ``None`` for all-null.
    """

    def __init__(self, model: str | dict | nn.Module, shape: Sequence[int], num_classes: int | None = None):
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"Network needs image shapes (C, H, W), got {tuple(shape)}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.shape = tuple(int(s) for s in shape)
        self.num_classes = num_classes
        given = model if isinstance(model, nn.Module) else None
        config = backbones.saved_config(given) if given is not None else backbones.backbone_config(model)
        if given is not None and config["in_channels"] != shape[0]:
            raise ValueError(f"the backbone takes {config['in_channels']} channels, the shape {tuple(shape)} has {shape[0]}")
        m = backbones.multiple(config)
        c, h, w = self.shape
        if config["_class_name"] == backbones.DIT:  # square, a whole number of patches
            side = m * math.ceil(max(h, w) / m)
            self.pad = (0, side - w, 0, side - h)
        else:
            self.pad = (0, -w % m, 0, -h % m)  # F.pad order: (left, right, top, bottom)
        size = max(h + self.pad[3], w + self.pad[1])
        self.backbone = given if given is not None else backbones.build(config, c, size, num_classes)
        self._register_load_state_dict_pre_hook(_rename_unet_keys)

    @property
    def null_class(self) -> int | None:
        return self.num_classes

    @property
    def config(self) -> dict:
        """The backbone's whole diffusers config (``_class_name`` included): ``Network(net.config, ...)`` rebuilds it."""
        return backbones.saved_config(self.backbone)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if any(self.pad):
            x = F.pad(x, self.pad, mode="circular")
        if self.num_classes is not None and labels is None:
            labels = torch.full((x.shape[0],), self.null_class, device=x.device, dtype=torch.long)
        elif self.num_classes is None and labels is not None:
            raise ValueError("this network is unconditional: pass labels=None")
        out = backbones.forward(self.backbone, x, t * TIME_SCALE, labels)
        return out[..., :h, :w]


def compile_network(net: nn.Module, device) -> None:
    """``torch.compile`` ``net`` in place for ``device``. On a CPU, inductor keeps the layout it is given (contiguous,
    or channels-last weights): left to choose convolution layouts itself (``layout_optimization``), torch 2.13's
    inductor computes wrong gradients on the CPU for most of a diffusers UNet, e.g. 122 of the ``tiny`` UNet's 152
    parameters at 32×32, zero below an up block's upsampler (tests/test_cpu_speed.py); forward values agree. The
    same happens with channels-last weights, so ``sagd train`` refuses ``compile`` with ``channels_last`` on a CPU."""
    net.compile(options={"layout_optimization": False} if torch.device(device).type == "cpu" else None)


def _rename_unet_keys(state_dict, prefix, *args) -> None:
    """Checkpoints written before the backbone registry named the submodule ``unet``."""
    for key in [k for k in state_dict if k.startswith(prefix + "unet.")]:
        state_dict[prefix + "backbone." + key[len(prefix) + 5:]] = state_dict.pop(key)


def drop_labels(labels: torch.Tensor, p: float, null_class: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_class`` with probability ``p`` (classifier-free guidance training)."""
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_class), labels)
