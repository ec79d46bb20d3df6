"""Backbones: the registry of diffusers models (UNet, DiT, a config file), the ``(x, t)`` wrapper and
classifier-free guidance."""

from .backbones import backbone_config, check_model
from .guidance import guided_denoiser
from .network import TIME_SCALE, Network, compile_network, drop_labels
from .presets import PRESETS

__all__ = ["Network", "PRESETS", "TIME_SCALE", "backbone_config", "check_model", "compile_network", "drop_labels",
           "guided_denoiser"]
