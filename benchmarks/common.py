"""What every benchmark records: the machine, the commit, and a markdown table beside the JSON."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
RESULTS.mkdir(exist_ok=True)


def git_commit() -> str:
    """``HEAD``'s hash, with ``-dirty`` when the work tree has uncommitted changes (``$SAGD_GIT_COMMIT``
    where the tree travels without its history, e.g. to a lent GPU machine)."""
    if os.environ.get("SAGD_GIT_COMMIT"):
        return os.environ["SAGD_GIT_COMMIT"]
    root = Path(__file__).resolve().parent.parent
    try:
        run = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=root, check=True).stdout.strip()
        return run("rev-parse", "HEAD") + ("-dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "git_commit": git_commit(),
    }
    return info


def write_table(name: str, title: str, rows: list[str], result: dict, script: str | None = None) -> None:
    """``results/<name>.md``: ``title``, ``rows`` and where they were measured (by ``benchmarks/<script>.py``,
    default ``name`` less a ``_cuda`` suffix)."""
    m = result["machine"]
    where = m["cuda_device"] or f"{m['processor']}, {m['cpu_count']} CPUs"
    text = [f"### {title}", "", *rows, "",
            f"Measured on {where}, torch {m['torch']}, commit {m['git_commit'][:12]} "
            f"(`benchmarks/{script or name.split('_cuda')[0]}.py`).", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(text))
    print("\n".join(text))
