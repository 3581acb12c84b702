#!/bin/bash
# GPU check (issue 28): the gpu device end to end on one lent GPU, in well under 8 minutes.
# Profiles the proxylessnas space's block ops at batch 32 (fp32, TF32 off, synchronised CUDA events
# on the GPU's own device), builds an isolated table, validates it on 30 held-out random networks
# measured on the same GPU, and prints the GPU, the fingerprint and the metrics. Paste the output
# into benchmarks/RESULTS.md with the GPU's name.
#
# Usage: benchmarks/gpu_check.sh [WORKDIR] [GPU_INDEX]      (defaults: /tmp/latbench-gpu-check 0)
# PY overrides the Python that runs latbench (default: python3); run from the repository root.
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,10p' "$0"; exit 0; fi
work=${1:-/tmp/latbench-gpu-check} gpu=${2:-0}
PY=${PY:-python3}
mkdir -p "$work"
start=$(date +%s)
stamp() { echo "$(date -u +%FT%TZ) +$(( $(date +%s) - start ))s $*" | tee -a "$work/times.txt" >&2; }
export CUDA_VISIBLE_DEVICES="$gpu"   # the lent GPU is index 0 inside this script
dev=(--device gpu --batch 32 --rounds 2 --runs 10 --warmup 5)

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu \
  --format=csv,noheader | tee "$work/gpu.txt" || true
stamp "start"
timeout 300 $PY -m latbench profile "${dev[@]}" --space proxylessnas --granularity block \
  --db "$work/gpu.db" --json > "$work/profile.json"
stamp "profiled $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['measured'], 'items')" "$work/profile.json")"
$PY -m latbench build-lut --db "$work/gpu.db" --method isolated --granularity block --space proxylessnas \
  -o "$work/gpu.lut.json" --json > "$work/build.json"
stamp "built"
timeout 240 $PY -m latbench validate "${dev[@]}" --archs 30 --lut "$work/gpu.lut.json" --space proxylessnas \
  --out "$work/validation" --json > "$work/validation.json"
stamp "validated"
$PY - "$work" <<'PYEOF'
import json, sys
work = sys.argv[1]
fp = json.load(open(f"{work}/profile.json"))["fingerprint"]
r = json.load(open(f"{work}/validation.json"))
print("GPU:", fp.get("model"), "| torch", fp.get("runtime_version"), "CUDA", fp.get("cuda"), "cuDNN", fp.get("cudnn"))
print("fingerprint:", json.dumps({k: fp[k] for k in sorted(fp)}))
print(f"30 archs, batch 32: MAPE {r['mape']:.2f} %, within ±5 % {r['within_5_pct']:.0f} %, "
      f"±10 % {r['within_10_pct']:.0f} %, Kendall tau {r['kendall_tau']:.3f}, bias {r['bias_pct']:+.2f} %, "
      f"noise-only MAPE {r['noise_mape_pct']:.2f} %")
PYEOF
stamp "done"
