#!/bin/bash
# Recalibrating a table from an earlier sitting (build-lut --prior-lut), measured with the product's
# own commands: N training-stream networks measured now, the fit toward OLD_LUT, then `validate` on
# the 100 held-out networks (the `validate` stream, seed 0: the fidelity benchmark's held-out archs)
# measured right after. Results: benchmarks/RESULTS.md, "Recalibration".
#
# Usage: benchmarks/recalibration.sh RUNTIME SPACE GRANULARITY OLD_LUT WORKDIR [N] [ROUNDS] [CORE]
#   e.g. benchmarks/recalibration.sh tflite proxylessnas-enlarged block old.lut.json /tmp/recal 30 15 1
set -euo pipefail
if [ $# -lt 5 ]; then sed -n '2,8p' "$0" >&2; exit 2; fi
runtime=$1 space=$2 gran=$3 old=$4 work=$5 n=${6:-30} rounds=${7:-15} core=${8:-1}
mkdir -p "$work"
dev=(--device cpu --runtime "$runtime" --core "$core" --timing paired --rounds "$rounds" --runs 10 --warmup 5)
stamp() { echo "$(date -u +%FT%TZ) $*" | tee -a "$work/times.txt" >&2; }
stamp "start $runtime $space $gran, $n calibration networks, $rounds rounds"
taskset -c "$core" latbench profile "${dev[@]}" --space "$space" --archs "$n" --db "$work/calibration.db" --json \
  > "$work/profile.json"
stamp "calibration networks measured"
latbench build-lut --db "$work/calibration.db" --method fitted --granularity "$gran" --prior-lut "$old" \
  --space "$space" -o "$work/recalibrated.lut.json" --json > "$work/build.json"
stamp "built"
taskset -c "$core" latbench validate "${dev[@]}" --archs 100 --lut "$work/recalibrated.lut.json" --space "$space" \
  --out "$work/validation" --json > "$work/validation.json"
stamp "validated"
python3 - "$work/validation.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"MAPE {r['mape']:.2f} %, within ±5 % {r['within_5_pct']:.0f} %, ±10 % {r['within_10_pct']:.0f} %, "
      f"tau {r['kendall_tau']:.3f}, bias {r['bias_pct']:+.2f} %, noise-only MAPE {r['noise_mape_pct']:.2f} %")
EOF
