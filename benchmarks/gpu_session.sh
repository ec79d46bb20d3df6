#!/usr/bin/env bash
# One lent-GPU sitting as one command (the device tool's limit is 10 minutes a call): the training
# throughput benchmark first, on an idle GPU (issue 15), then the suite with the time left (`gpu_suite.sh`):
# SESSION_BUDGETS, by default the GPU plan `mnist_gpu` (issue 24: 41 runs of ~170 s, 14 at a time, so about two
# waves a call; the decisive comparison's 20 runs come first). One plan per call: its samples come back in
# 15 MB parts and a call returns at most 8 files; once MNIST's plan is complete, SESSION_BUDGETS=quickdraw_gpu.
# Carry `.whl` and `.gpu` as gpu_suite.sh says; set SAGD_GIT_COMMIT to the commit sent.
#
#   bash benchmarks/gpu_session.sh SECONDS [THROUGHPUT_SECONDS]
#
# Returns at most 8 files: $OUT/tp.tar (gpu_throughput.{json,md}), and per budget $OUT/suite_<budget>.tar.gz and
# .log and $OUT/samples_<budget>.tar.NN. Here: untar tp.tar into benchmarks/results/ and each suite_*.tar.gz into the
# repository, `cat samples_<budget>.tar.* | tar x`, score a plan's runs (`suite.py inception --plan <budget>
# --jobs <cores>`), then `make results`.
set -u
seconds=${1:-580}; tp_seconds=${2:-180}
start=$(date +%s)
out=${OUT:-/tmp/out}; mkdir -p "$out/tp"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
PYTHONPATH=/tmp/site:$PWD/src:$PWD/benchmarks PYTHONUNBUFFERED=1 timeout "$tp_seconds" \
  python3 benchmarks/gpu_throughput.py --out "$out/tp" --rounds 5 2>&1 | tail -20
left=$(( seconds - ($(date +%s) - start) ))
tar cf "$out/tp.tar" -C "$out/tp" . && rm -rf "$out/tp"
for budget in ${SESSION_BUDGETS:-mnist_gpu}; do
  [ "$left" -gt 230 ] || break  # gpu_suite.sh claims no run in its last 200 s
  SUITE_BUDGET=$budget bash benchmarks/gpu_suite.sh "$left" 14 ABC 2>&1 | grep -a "^\[suite\]\|^suite:\|Error\|error:" | tail -60
  mv "$out/suite_gpu.tar.gz" "$out/suite_$budget.tar.gz" 2>/dev/null
  mv "$out/suite_gpu.log" "$out/suite_$budget.log" 2>/dev/null
  for part in "$out"/suite_samples.tar.*; do [ -f "$part" ] && mv "$part" "$out/samples_$budget.tar.${part##*.}"; done
  left=$(( seconds - ($(date +%s) - start) ))
done
ls -la "$out"
