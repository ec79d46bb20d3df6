"""Finding data sets on disk: the places searched, in order, and the error when none holds them.

Nothing is ever downloaded. A data set is looked for under the caller's ``root`` (the CLI's
``--data-root``), then ``$SAGD_DATA``, then system folders (Debian's ``dataset-*`` packages).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

ENV_VAR = "SAGD_DATA"


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not on this machine; the message says where it was looked for and how to get it."""


def search_dirs(root: str | None, subdirs: Sequence[str], system: Sequence[str] = ()) -> list[Path]:
    """Candidate folders: each of ``subdirs`` (then the base itself) under ``root`` and ``$SAGD_DATA``, then ``system``."""
    bases = [Path(b).expanduser() for b in (root, os.environ.get(ENV_VAR)) if b]
    dirs = [base / sub for base in bases for sub in (*subdirs, "")]
    dirs += [Path(s) for s in system]
    return list(dict.fromkeys(dirs))


def find_dir(
    dataset: str, split: str, dirs: Sequence[Path], files: Sequence[Sequence[str]], how_to_get: str
) -> tuple[Path, list[Path]]:
    """The first of ``dirs`` that holds every file of ``files`` (each given as alternative names).

    Returns the folder and the path of each file. Raises ``DatasetNotFoundError`` otherwise.
    """
    for d in dirs:
        found = [next((d / name for name in names if (d / name).is_file()), None) for names in files]
        if all(found):
            return d, found
    wanted = ", ".join(names[0] if len(names) == 1 else f"({' or '.join(names)})" for names in files)
    places = ", ".join(str(d) for d in dirs) or f"nowhere (no root given and ${ENV_VAR} unset)"
    raise DatasetNotFoundError(
        f"{dataset} ({split} split) not found: looked for {wanted} in {places}. {how_to_get}"
    )
