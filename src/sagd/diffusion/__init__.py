"""The SAGD diffusion process: schedules, forward process, parametrisations, samplers, likelihood."""

from .likelihood import bits_per_dim, nll
from .parametrization import PREDICTIONS, Denoiser, loss, target, to_denoised
from .process import VPProcess
from .samplers import METHODS, sample, time_grid
from .schedules import CosineSchedule, LinearSchedule

__all__ = [
    "CosineSchedule",
    "Denoiser",
    "LinearSchedule",
    "METHODS",
    "PREDICTIONS",
    "VPProcess",
    "bits_per_dim",
    "loss",
    "nll",
    "sample",
    "target",
    "time_grid",
    "to_denoised",
]
