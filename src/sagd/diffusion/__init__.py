"""The SAGD diffusion process: schedules, forward process, parametrisations, samplers, likelihood."""

from .exact import GaussianData, sample_law
from .fitted_grids import fitted_grid
from .frequency import FrequencyProcess
from .grids import optimized_grid
from .likelihood import bits_per_dim, nll
from .parametrization import PREDICTIONS, Denoiser, loss, target, to_denoised
from .process import VPProcess
from .samplers import METHODS, nfe, sample, steps_for_nfe, time_grid
from .schedules import CosineSchedule, LinearSchedule

__all__ = [
    "CosineSchedule",
    "Denoiser",
    "FrequencyProcess",
    "GaussianData",
    "LinearSchedule",
    "METHODS",
    "PREDICTIONS",
    "VPProcess",
    "bits_per_dim",
    "fitted_grid",
    "loss",
    "nfe",
    "nll",
    "optimized_grid",
    "sample",
    "sample_law",
    "steps_for_nfe",
    "target",
    "time_grid",
    "to_denoised",
]
