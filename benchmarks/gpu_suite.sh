#!/usr/bin/env bash
# The suite's `gpu` budget as one prepared device check (issue 12): run from the repository root on
# a lent GPU machine whose Python has torch but not diffusers. Carry `.whl` (diffusers and
# importlib_metadata wheels for that Python) and `.gpu` (Fashion-MNIST's IDX files under
# .gpu/fashion-mnist). Results (probe series included) and training logs come back as $OUT/suite_gpu.tar.gz, re-packed
# every 20 s so that a run stopped at its limit still returns what finished; the samples of A's
# decisive arms come back as $OUT/suite_samples.tar.
#
#   bash benchmarks/gpu_suite.sh SECONDS [JOBS] [EXPERIMENTS]
set -u
seconds=${1:-480}; jobs=${2:-12}; experiments=${3:-ABC}; budget=${SUITE_BUDGET:-gpu}
out=${OUT:-/tmp/out}; mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/benchmarks SAGD_DATA=$PWD/.gpu SAGD_CACHE=/tmp/sagd-cache
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, torch.cuda.get_device_name(0))"
mkdir -p benchmarks/results/suite/$budget
# the device's training logs unpack under runs/device/: a local run folder of the same run (its
# checkpoints trained here) keeps its own log
pack() { tar czf "$out/suite_gpu.tar.gz.tmp" --exclude='*.samples.npz' --transform 's,^runs/suite/,runs/device/,' \
           benchmarks/results/suite/$budget $(ls runs/suite/$budget/*/*/*/metrics.jsonl 2>/dev/null)
         mv "$out/suite_gpu.tar.gz.tmp" "$out/suite_gpu.tar.gz"; }
( while sleep 20; do pack; done ) & packer=$!
( while sleep 60; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) & smi=$!
start=$(date +%s)
# stop claiming new runs ~100 s before the end so that running ones can finish
timeout $((seconds - 15)) python3 benchmarks/suite.py run --budget "$budget" --experiments "$experiments" --jobs "$jobs" \
  --minutes "$(python3 -c "print(max(1.0, ($seconds - 115) / 60))")" 2>&1 | tee "$out/suite_gpu.log" | grep -v "^\s*$"
echo "suite: $(( $(date +%s) - start )) s"
kill $packer $smi 2>/dev/null
pack
# the kept samples of A's decisive arms, for Inception FID where its weights are (suite.py inception)
decisive=$(python3 -c "import sys; sys.path.insert(0, 'benchmarks'); from experiments import DECISIVE; print(' '.join(DECISIVE))")
tar cf "$out/suite_samples.tar" $(for arm in $decisive; do ls benchmarks/results/suite/$budget/A/${arm}__s*.samples.npz 2>/dev/null; done)
ls -la "$out"
