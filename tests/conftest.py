"""Test-wide settings: one torch thread per worker (two workers share two cores under ``make test``)."""

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # the oracles module
