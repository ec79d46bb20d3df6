#!/usr/bin/env bash
# One lent-GPU sitting as one command (the device tool's limit is 10 minutes a call): the training
# throughput benchmark first, on an idle GPU (issue 15), then the experiment suite with the time
# left (issue 12; `gpu_suite.sh`: the `cpu` budget's remaining runs, then the `gpu` budget's).
# Carry `.whl` and `.gpu` as gpu_suite.sh says; set SAGD_GIT_COMMIT to the commit sent.
#
#   bash benchmarks/gpu_session.sh SECONDS [THROUGHPUT_SECONDS]
#
# Returns $OUT/tp/gpu_throughput.{json,md}, $OUT/suite_<budget>.tar.gz and .log, $OUT/samples_cpu.tar:
# untar both into the repository, copy the throughput files to benchmarks/results/, then `make results`.
set -u
seconds=${1:-580}; tp_seconds=${2:-180}
start=$(date +%s)
out=${OUT:-/tmp/out}; mkdir -p "$out/tp"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
PYTHONPATH=/tmp/site:$PWD/src:$PWD/benchmarks PYTHONUNBUFFERED=1 timeout "$tp_seconds" \
  python3 benchmarks/gpu_throughput.py --out "$out/tp" --rounds 5 2>&1 | tail -20
left=$(( seconds - ($(date +%s) - start) ))
for budget in ${SESSION_BUDGETS:-cpu gpu}; do
  [ "$left" -gt 150 ] || break
  SUITE_BUDGET=$budget bash benchmarks/gpu_suite.sh "$left" 14 ABC 2>&1 | grep -a "^\[suite\]\|^suite:\|Error\|error:" | tail -60
  mv "$out/suite_gpu.tar.gz" "$out/suite_$budget.tar.gz" 2>/dev/null
  mv "$out/suite_gpu.log" "$out/suite_$budget.log" 2>/dev/null
  # kept samples come back for the cpu budget only (Inception FID runs on CPUs: its weights exceed the carry limit)
  if [ "$budget" = cpu ]; then mv "$out/suite_samples.tar" "$out/samples_cpu.tar"; else rm -f "$out/suite_samples.tar"; fi
  left=$(( seconds - ($(date +%s) - start) ))
done
ls -la "$out" "$out/tp"
