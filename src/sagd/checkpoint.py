"""Checkpoints: one folder per step, every tensor in safetensors, the rest in JSON, written atomically.

``runs/<name>/checkpoints/step_00001000/`` holds

* ``model.safetensors``, ``ema.safetensors``: the network's and the EMA network's ``state_dict``;
* ``optimizer.safetensors``: the optimizer's per-parameter tensors (keys ``"<index>.<name>"``);
* ``rng.safetensors``: ``torch.Generator.get_state()`` of every generator (uint8);
* ``covariance.safetensors``: ``SpectralCovariance.state_dict()`` (data-dependent spectra included);
* ``state.json``: the step, the optimizer's hyper-parameters, the config, anything else JSON.

A checkpoint is written to a hidden temporary folder, every file fsynced, then renamed into place
with ``os.replace``: a crash leaves either the complete new checkpoint or none, never a partial
one, and the previous checkpoints stay loadable. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CHECKPOINTS = "checkpoints"
STATE = "state.json"
_PREFIX = "step_"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: str | Path, step: int, tensors: dict[str, dict[str, torch.Tensor]], state: dict, keep: int) -> Path:
    """Write checkpoint ``step`` of ``run_dir`` and delete all but the newest ``keep``.

    Args:
        tensors: file stem -> tensor dict, e.g. ``{"model": net.state_dict(), ...}``.
        state: JSON-serialisable metadata; ``"step"`` is added.
    Returns the checkpoint folder.
    """
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{step:08d}"
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for stem, group in tensors.items():
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in group.items()}
        save_file(cpu, tmp / f"{stem}.safetensors")
    (tmp / STATE).write_text(json.dumps({**state, "step": step}, indent=1))
    for f in tmp.iterdir():
        _fsync(f)
    _fsync(tmp)
    if final.exists():  # re-saving a step (e.g. after a resume that did no work): replace it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(root)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The complete checkpoints of ``run_dir``, oldest first (temporary folders are ignored)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(_PREFIX) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))


def latest(run_dir: str | Path) -> Path:
    """The newest complete checkpoint; ``FileNotFoundError`` when there is none."""
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"no checkpoint in {str(Path(run_dir) / CHECKPOINTS)!r}")
    return found[-1]


def load_state(ckpt: str | Path) -> dict:
    return json.loads((Path(ckpt) / STATE).read_text())


def load_tensors(ckpt: str | Path, stem: str, device="cpu") -> dict[str, torch.Tensor]:
    return load_file(Path(ckpt) / f"{stem}.safetensors", device=str(device))


def flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors ``{"<index>.<name>": t}`` and JSON metadata."""
    tensors, scalars = {}, {}
    for index, per_param in state_dict["state"].items():
        for name, value in per_param.items():
            (tensors if torch.is_tensor(value) else scalars)[f"{index}.{name}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """The inverse of ``flatten_optimizer``: a dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict] = {}
    for key, value in (*tensors.items(), *meta["scalars"].items()):
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}
