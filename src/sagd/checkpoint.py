"""Checkpoints: one folder per step, every tensor in safetensors, the rest in JSON, written atomically.

``runs/<name>/checkpoints/step_00001000/`` holds

* ``model.safetensors``, ``ema.safetensors``: the network's and the EMA network's ``state_dict``;
* ``optimizer.safetensors``: the optimizer's per-parameter tensors (keys ``"<index>.<name>"``);
* ``rng.safetensors``: ``torch.Generator.get_state()`` of every generator (uint8);
* ``covariance.safetensors``: ``SpectralCovariance.state_dict()`` (data-dependent spectra included);
* ``state.json``: the step, the optimizer's hyper-parameters, the config, anything else JSON, and
  the size and SHA-256 of every other file (``"files"``), written last.

A checkpoint is written to a hidden temporary folder, every file fsynced, then renamed into place
with ``os.replace``: a crash leaves either the complete new checkpoint or none, never a partial
one, and the previous checkpoints stay loadable. A failed write (a full disk) removes its
temporary folder and re-raises. Checkpoints are deleted by renaming them to a hidden name first,
so a kill during a deletion never leaves a partial ``step_*`` folder. Nothing is ever unpickled.

``latest`` returns the newest checkpoint that ``verify`` finds intact (every file present, of
the recorded size and hash, ``state.json`` well formed); a damaged newer one is reported and
skipped: a truncated file, a deleted file or a hand-edited ``state.json`` costs the steps since
the previous checkpoint, never the run.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

CHECKPOINTS = "checkpoints"
STATE = "state.json"
FORMAT = 1
"""The layout written here; ``state.json`` records it as ``"format"``."""
_PREFIX = "step_"


class DamagedCheckpoint(ValueError):
    """A checkpoint file is missing, truncated, altered, or from an unknown format; the message names it."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` all at once: a kill leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    _fsync(tmp)
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read a MiB at a time (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _discard(folder: Path) -> None:
    """Delete ``folder``: renamed to a hidden name first, so that a kill midway leaves no partial ``step_*``."""
    trash = folder.with_name(f".{folder.name}.deleting")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(folder, trash)
    shutil.rmtree(trash)


def _save_file(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """``safetensors.save_file``, whose failed writes (a full disk) become the ``OSError`` they are."""
    try:
        save_file(tensors, path)
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        raise OSError(int(code.group(1)) if code else errno.EIO, str(e), str(path)) from None


def save(run_dir: str | Path, step: int, tensors: dict[str, dict[str, torch.Tensor]], state: dict, keep: int) -> Path:
    """Write checkpoint ``step`` of ``run_dir`` and delete all but the newest ``keep``.

    Args:
        tensors: file stem -> tensor dict, e.g. ``{"model": net.state_dict(), ...}``.
        state: JSON-serialisable metadata; ``"step"``, ``"format"`` and ``"files"`` are added.
    Returns the checkpoint folder. On an error (e.g. ``OSError`` for a full disk) the temporary
    folder is removed and the error re-raised; the existing checkpoints are untouched.
    """
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{step:08d}"
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        files = {}
        for stem, group in tensors.items():
            cpu = {k: v.detach().to("cpu").contiguous() for k, v in group.items()}
            path = tmp / f"{stem}.safetensors"
            _save_file(cpu, path)
            _fsync(path)
            files[path.name] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        (tmp / STATE).write_text(json.dumps({**state, "step": step, "format": FORMAT, "files": files}, indent=1))
        _fsync(tmp / STATE)
        _fsync(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # re-saving a step (e.g. after a resume that did no work): replace it whole
        _discard(final)
    os.replace(tmp, final)
    _fsync(root)
    for old in list_checkpoints(run_dir)[:-keep]:
        _discard(old)
    return final


def step_of(ckpt: str | Path) -> int:
    """The training step a checkpoint folder ``step_XXXXXXXX`` is named for."""
    return int(Path(ckpt).name[len(_PREFIX):])


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The checkpoint folders ``step_*`` of ``run_dir``, oldest first (hidden temporary folders are ignored)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX):].isdigit()]
    return sorted(found, key=step_of)


def report(message: str) -> None:
    """The default reporter of ``latest``: one line on stderr."""
    print(f"sagd: {message}", file=sys.stderr)


def latest(run_dir: str | Path, report: Callable[[str], None] = report) -> Path:
    """The newest intact checkpoint of ``run_dir``; each damaged newer one is passed to ``report`` and skipped.

    Raises ``FileNotFoundError`` when there is no checkpoint, ``DamagedCheckpoint`` when none is intact.
    """
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"no checkpoint in {str(Path(run_dir) / CHECKPOINTS)!r}")
    problems = []
    for ckpt in reversed(found):
        try:
            verify(ckpt)
        except DamagedCheckpoint as e:
            problems.append(str(e))
            continue
        for problem in problems:
            report(f"{problem}; using the newest intact checkpoint, {str(ckpt)!r}")
        return ckpt
    raise DamagedCheckpoint(f"no intact checkpoint in {str(Path(run_dir) / CHECKPOINTS)!r}: " + "; ".join(problems))


_STATE_TYPES = {"step": int, "format": int, "files": dict, "processes": int, "ema_updates": int,
                "optimizer": dict, "config": dict}
_TYPE_NAMES = {int: "an integer", dict: "a JSON object"}


def load_state(ckpt: str | Path) -> dict:
    """``state.json`` of ``ckpt``, checked for form; ``DamagedCheckpoint`` names the file and the fault."""
    ckpt = Path(ckpt)
    path = ckpt / STATE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r} is not valid JSON ({e})") from None
    if not isinstance(state, dict):
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r} holds a {type(state).__name__}, not a JSON object")
    if state.get("format", FORMAT) != FORMAT:
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r} is in format {state['format']!r}; "
                                f"this sagd reads format {FORMAT}")
    for key, kind in _STATE_TYPES.items():
        if key in state and (not isinstance(state[key], kind) or isinstance(state[key], bool)):
            raise DamagedCheckpoint(f"checkpoint file {str(path)!r}: {key!r} must be {_TYPE_NAMES[kind]}, "
                                    f"got {state[key]!r:.60}")
    if state.get("step") != step_of(ckpt):
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r}: 'step' is {state.get('step')!r} "
                                f"but the folder is {ckpt.name}")
    return state


def verify(ckpt: str | Path) -> dict:
    """Check that ``ckpt`` is intact and return its state: ``state.json`` well formed, every file it
    records present with its size and SHA-256 (checkpoints without records: every ``.safetensors``
    file readable). Raises ``DamagedCheckpoint`` naming the first bad file."""
    ckpt = Path(ckpt)
    state = load_state(ckpt)
    if "files" not in state:
        for path in sorted(ckpt.glob("*.safetensors")):
            _check_header(path)
        return state
    for name, record in state["files"].items():
        path = ckpt / name
        if not isinstance(record, dict) or not isinstance(record.get("bytes"), int):
            raise DamagedCheckpoint(f"checkpoint file {str(ckpt / STATE)!r}: the record of {name!r} is not "
                                    f"{{'bytes': int, 'sha256': str}}, got {record!r:.60}")
        if not path.is_file():
            raise DamagedCheckpoint(f"checkpoint file {str(path)!r} is missing")
        size = path.stat().st_size
        if size != record["bytes"]:
            raise DamagedCheckpoint(f"checkpoint file {str(path)!r} has {size} bytes, {record['bytes']} were "
                                    f"written ({'truncated' if size < record['bytes'] else 'altered'})")
        if file_sha256(path) != record.get("sha256"):
            raise DamagedCheckpoint(f"checkpoint file {str(path)!r} does not match the SHA-256 recorded when it was written")
    return state


def _check_header(path: Path) -> None:
    """Raise ``DamagedCheckpoint`` unless ``path``'s header parses and its tensors cover the file exactly."""
    try:
        with safe_open(path, "pt"):
            pass
    except (SafetensorError, OSError) as e:
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r} is not a readable safetensors file ({e})") from None


def load_tensors(ckpt: str | Path, stem: str, device="cpu") -> dict[str, torch.Tensor]:
    path = Path(ckpt) / f"{stem}.safetensors"
    try:
        return load_file(path, device=str(device))
    except FileNotFoundError:
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r} is missing") from None
    except SafetensorError as e:
        raise DamagedCheckpoint(f"checkpoint file {str(path)!r} is not a readable safetensors file ({e})") from None


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
