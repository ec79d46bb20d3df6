"""``UNet2DModel`` presets (diffusers): the backbones sagd trains.

Each preset is the keyword arguments of ``diffusers.UNet2DModel`` apart from the sample size and
the channel counts, which come from the data. Attention sits at the lowest resolution only (the
mid block, plus the last down / first up block for ``small`` and ``base``).

* ``tiny``  ≈ 1.1 M parameters: tests and CPU demos.
* ``small`` ≈ 6.5 M: 28–32 px on one GPU.
* ``base``  ≈ 15.5 M: the paper's widths (32, 64, 128, 256) for 32×32 runs (it reports 15.9 M).
"""

from __future__ import annotations

from diffusers import UNet2DModel

PRESETS: dict[str, dict] = {
    "tiny": dict(
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D",) * 3,
        norm_num_groups=8,
    ),
    "small": dict(
        block_out_channels=(64, 128, 128),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
    ),
    "base": dict(
        block_out_channels=(32, 64, 128, 256),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
    ),
}


def check_preset(name: str) -> str:
    if name not in PRESETS:
        raise ValueError(f"model must be one of {sorted(PRESETS)}, got {name!r}")
    return name


def downsampling(name: str) -> int:
    """How many times the preset halves the resolution: inputs must be divisible by ``2**downsampling``."""
    return len(PRESETS[check_preset(name)]["block_out_channels"]) - 1


def build_unet(name: str, channels: int, size: int, num_class_embeds: int | None = None) -> UNet2DModel:
    """A fresh ``UNet2DModel`` from preset ``name`` for ``channels``-channel inputs of ``size × size``."""
    return UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        num_class_embeds=num_class_embeds,
        **PRESETS[check_preset(name)],
    )
