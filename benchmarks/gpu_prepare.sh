#!/usr/bin/env bash
# What a lent GPU call carries, prepared here once (after `make venv data`): `.whl`, the wheels the device's
# Python 3.12 lacks (diffusers and importlib_metadata, at this venv's versions), and `.gpu`, the data files of
# the budgets or plans named (as `make data` leaves them). Both are ignored by git (.git/info/exclude) and travel
# with `carry: [".whl", ".gpu"]`; the working tree with them must stay under the device's 64 MiB.
#
#   bash benchmarks/gpu_prepare.sh mnist_gpu        # then: run `bash benchmarks/gpu_session.sh 560` on the device
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "gpu_prepare.sh: name the budgets or plans to carry data for (e.g. mnist_gpu)" >&2; exit 2; }
for p in /.whl/ /.gpu/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
py=.venv/bin/python
rm -rf .whl .gpu && mkdir -p .whl .gpu
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .whl \
  "diffusers==$($py -c 'import diffusers; print(diffusers.__version__)')" \
  "importlib_metadata==$($py -c 'import importlib.metadata as m; print(m.version("importlib_metadata"))')"
# the data set's own files, found where `load_dataset` finds them here
PYTHONPATH=src:benchmarks $py - "$@" <<'EOF'
import shutil
import sys
from pathlib import Path

from suite import dataset_of
from sagd.data import packaged

for name in sys.argv[1:]:
    dataset = dataset_of(name)
    if dataset in packaged.PACKAGES:
        files = [packaged._package_file(dataset, "train", None)]
    else:
        raise SystemExit(f"gpu_prepare.sh: {name}: {dataset} is not a packaged data set; copy its IDX files into "
                         ".gpu/fashion-mnist by hand")
    for f in files:
        shutil.copy2(f, Path(".gpu") / f.name)
        print(f"{name}: {dataset} <- {f}")
EOF
du -sh .whl .gpu
echo "the working tree that travels: $(( ($(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -cb .whl .gpu | tail -1 | cut -f1)) / 1048576 )) MiB of 64"
