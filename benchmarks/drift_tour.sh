#!/bin/bash
# The README tour as a user runs it (issue 27 goal 5), on the ORT proxylessnas pair: profile the
# ops, profile N whole networks, build a fitted table, then validate it on 100 held-out networks
# per seed (each validation measures the table's anchors in the same pass: raw and drift-corrected
# metrics). EXTRA options (e.g. --timing paired, --precision 0.5 --budget 900, --workers 4) go to
# every measuring command, so one run of this script judges one candidate default.
#
# Usage: benchmarks/drift_tour.sh WORKDIR [N_ARCHS] [GAP_S] [SEEDS] -- [EXTRA options...]
#   e.g. benchmarks/drift_tour.sh /tmp/tour-plain 100 0 "100 101 102"
#        benchmarks/drift_tour.sh /tmp/tour-paired 100 0 "100 101 102" -- --timing paired
#   GAP_S: seconds to wait between building the table and validating it (a later sitting).
#   Env: PYTHON (default python), VAL_ARCHS (held-out networks per seed, default 100), RUNTIME (default
#   ort), SPACE (default proxylessnas).
set -euo pipefail
if [ $# -lt 1 ]; then sed -n '2,14p' "$0" >&2; exit 2; fi
work=$1; shift
n=${1:-100}; [ $# -gt 0 ] && shift
gap=${1:-0}; [ $# -gt 0 ] && shift
seeds=${1:-"100 101 102"}; [ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
extra=("$@")
lb=("${PYTHON:-python}" -m latbench)
val_archs=${VAL_ARCHS:-100} runtime=${RUNTIME:-ort} space=${SPACE:-proxylessnas}
mkdir -p "$work"
stamp() { echo "$(date -u +%FT%TZ) $*" | tee -a "$work/times.txt" >&2; }
stamp "start: $runtime $space, $n archs, gap $gap s, seeds $seeds, extra: ${extra[*]:-none}"
"${lb[@]}" profile --device cpu --runtime "$runtime" --space "$space" --db "$work/store.db" "${extra[@]}" --json \
  > "$work/profile-ops.json"
stamp "ops profiled"
"${lb[@]}" profile --device cpu --runtime "$runtime" --space "$space" --archs "$n" --db "$work/store.db" "${extra[@]}" \
  --json > "$work/profile-archs.json"
stamp "networks profiled"
"${lb[@]}" build-lut --db "$work/store.db" --method fitted -o "$work/fitted.json" --json > "$work/build.json"
stamp "table built"
sleep "$gap"
for s in $seeds; do
  "${lb[@]}" validate --archs "$val_archs" --device cpu --runtime "$runtime" --lut "$work/fitted.json" --seed "$s" \
    --out "$work/val-$s" "${extra[@]}" --json > "$work/val-$s.json"
  stamp "validated seed $s"
done
python3 - "$work" $seeds <<'PY'
import json, sys
work, seeds = sys.argv[1], sys.argv[2:]
print("seed  raw MAPE  ±5%  ±10%   tau  | drift % [95% CI]      | corrected MAPE  ±5%  ±10%   tau | noise MAPE")
for s in seeds:
    r = json.load(open(f"{work}/val-{s}.json"))
    c = r.get("drift_corrected") or {}
    ci = r.get("drift_ci95_pct") or [float("nan")] * 2
    print(f"{s:4}  {r['mape']:7.2f}  {r['within_5_pct']:4.0f} {r['within_10_pct']:5.0f} {r['kendall_tau']:5.3f} | "
          f"{r['drift_pct'] if r['drift_pct'] is not None else float('nan'):+6.2f} [{ci[0]:+6.2f} {ci[1]:+6.2f}] | "
          f"{c.get('mape', float('nan')):13.2f} {c.get('within_5_pct', float('nan')):4.0f} "
          f"{c.get('within_10_pct', float('nan')):5.0f} {c.get('kendall_tau', float('nan')):5.3f} | "
          f"{r['noise_mape_pct']:.2f}")
PY
