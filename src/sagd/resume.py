"""Trusting a run folder: which checkpoint to continue or sample, and whether it belongs to the config.

A checkpoint is used only when ``checkpoint.verify`` finds it intact (a damaged newer one is
reported and the next older one taken) and when it was written for the same data, spectrum,
process and network as the config at hand (``IDENTITY``); otherwise one line names the file and
the mismatch. Tensors that do not fit the network raise the same kind of line, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from . import checkpoint
from .checkpoint import DamagedCheckpoint
from .diffusion.frequency_spec import DEFAULT as DEFAULT_PROCESS
from .finite import nonfinite_entries

IDENTITY = ("dataset", "process", "spectrum", "schedule", "noise", "prediction", "model", "class_conditional")
"""Config keys a checkpoint is bound to: changing one on ``--resume`` (or in ``config.yaml``) is an error."""
ADDED = {"process": DEFAULT_PROCESS}
"""Keys of ``IDENTITY`` added after checkpoints were written without them, and the value such a checkpoint had."""


def find(run_dir: str | Path, config: dict, say: Callable[[str], None], required: bool = True) -> Path | None:
    """The newest intact checkpoint of ``run_dir`` written for ``config`` (``TrainConfig.to_dict()``).

    Damaged newer checkpoints are reported through ``say``. With ``required=False`` a run without
    checkpoints gives ``None``. Raises ``DamagedCheckpoint`` (a ``ValueError``) when the checkpoint
    belongs to another run, ``FileNotFoundError`` when there is none and one is required.
    """
    try:
        ckpt = checkpoint.latest(run_dir, report=say)
    except FileNotFoundError:
        if required:
            raise
        return None
    check_identity(ckpt, config)
    return ckpt


def check_identity(ckpt: Path, config: dict) -> None:
    """Raise ``DamagedCheckpoint`` unless ``ckpt``'s recorded config agrees with ``config`` on ``IDENTITY``."""
    state = checkpoint.load_state(ckpt)
    path = str(Path(ckpt) / checkpoint.STATE)
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise DamagedCheckpoint(f"checkpoint file {path!r} records no config: it was not written by sagd train")
    saved = {**ADDED, **saved}
    for key in IDENTITY:
        if saved.get(key) != config.get(key):
            raise DamagedCheckpoint(
                f"checkpoint file {path!r} belongs to a run with {key}={saved.get(key)!r}, but the config says "
                f"{key}={config.get(key)!r}: a checkpoint continues or samples only the run that wrote it")


def load_into(module: torch.nn.Module, ckpt: Path, stem: str) -> None:
    """``module.load_state_dict`` from ``ckpt/<stem>.safetensors``; non-finite weights or a misfit raise
    ``DamagedCheckpoint`` naming the file (and the first bad key)."""
    tensors = checkpoint.load_tensors(ckpt, stem)
    path = str(Path(ckpt) / f"{stem}.safetensors")
    bad = nonfinite_entries(tensors)
    if bad:
        name, n = next(iter(bad.items()))
        raise DamagedCheckpoint(f"checkpoint file {path!r} holds non-finite weights ({n} NaN/inf entries in "
                                f"{name!r}, {len(bad)} tensors affected): refusing to use them")
    try:
        module.load_state_dict(tensors)
    except RuntimeError as e:  # "Error(s) in loading state_dict ...:" then one line per kind of misfit
        lines = [line.strip() for line in str(e).splitlines()[1:] if line.strip()] or [str(e)]
        detail = next((line for line in lines if line.startswith("size mismatch")), lines[0])
        raise DamagedCheckpoint(f"checkpoint file {path!r} does not fit this network: "
                                f"{detail if len(detail) < 200 else detail[:200] + '...'}") from None


def require(state: dict, ckpt: Path, keys: tuple[str, ...]) -> None:
    """Raise ``DamagedCheckpoint`` naming ``state.json`` if one of ``keys`` is absent."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise DamagedCheckpoint(f"checkpoint file {str(Path(ckpt) / checkpoint.STATE)!r} lacks "
                                f"{', '.join(map(repr, missing))}")
