"""Test-wide settings: one torch thread per worker (two workers share two cores under ``make test``),
unless ``OMP_NUM_THREADS`` asks for more (to check that results do not depend on the thread count)."""

import os
import sys
from pathlib import Path

import torch

if not os.environ.get("OMP_NUM_THREADS"):
    torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # the oracles module

pytest_plugins = ("fault_table",)  # the `fault` fixture and `--faults-md` (docs/faults.md)
