"""Backbones: diffusers ``UNet2DModel`` presets, the ``(x, t)`` wrapper and classifier-free guidance."""

from .guidance import guided_denoiser
from .network import TIME_SCALE, Network, drop_labels
from .presets import PRESETS, build_unet, check_preset, downsampling

__all__ = ["Network", "PRESETS", "TIME_SCALE", "build_unet", "check_preset", "downsampling", "drop_labels", "guided_denoiser"]
