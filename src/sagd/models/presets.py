"""Backbone presets: diffusers model configs, minus what the data decides.

Each preset is a diffusers config (``_class_name`` and keyword arguments) without the sample
size, the channel counts and the class embeddings, which come from the data (``backbones.build``).

``UNet2DModel``: attention at the lowest resolution only (the mid block, plus the last down /
first up block for ``small`` and ``base``).

* ``tiny``  ≈ 1.1 M parameters: tests and CPU demos.
* ``small`` ≈ 6.5 M: 28–32 px on one GPU.
* ``base``  ≈ 15.5 M: the paper's widths (32, 64, 128, 256) for 32×32 runs (it reports 15.9 M).

``DiTTransformer2DModel`` (Peebles & Xie 2023, Table 1: depth, width, heads; patch 2):

* ``dit-tiny``: depth 2, width 64, 2 heads: tests.
* ``dit-s/2``: depth 12, width 384, 6 heads (the paper's DiT-S/2).
* ``dit-b/2``: depth 12, width 768, 12 heads (DiT-B/2; the SAGD paper's ImageNet-256 latent runs use
  a DiT of this family).

diffusers' DiT gives every block its own time/label embedding where the DiT paper shares one, so
its parameter counts are a little larger: DiT-S/2 ≈ 35 M (paper 33 M), DiT-B/2 ≈ 138 M (paper 130 M),
on ``(4, 32, 32)`` latents.
"""

from __future__ import annotations

UNET = "UNet2DModel"
DIT = "DiTTransformer2DModel"


def _dit(depth: int, width: int, heads: int, patch: int = 2) -> dict:
    return dict(_class_name=DIT, num_layers=depth, num_attention_heads=heads, attention_head_dim=width // heads,
                patch_size=patch)


PRESETS: dict[str, dict] = {
    "tiny": dict(
        _class_name=UNET,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D",) * 3,
        norm_num_groups=8,
    ),
    "small": dict(
        _class_name=UNET,
        block_out_channels=(64, 128, 128),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
    ),
    "base": dict(
        _class_name=UNET,
        block_out_channels=(32, 64, 128, 256),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
    ),
    "dit-tiny": _dit(2, 64, 2),
    "dit-s/2": _dit(12, 384, 6),
    "dit-b/2": _dit(12, 768, 12),
}
