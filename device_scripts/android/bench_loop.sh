#!/system/bin/sh
# bench_loop.sh - run benchmark_model over a list of graphs, one output file each.
#
#   sh bench_loop.sh BENCHMARK_MODEL CPU_MASK OUT_DIR GRAPH...
#
# For each GRAPH (a .tflite path on the phone): optionally wait for the phone to cool down
# (COOLDOWN_C set: cooldown.sh next to this script, COOLDOWN_TIMEOUT_S, default 300), then
#   taskset CPU_MASK BENCHMARK_MODEL --graph=GRAPH --num_threads=$THREADS
#       --warmup_runs=$WARMUP --warmup_min_secs=$WARMUP_MIN_SECS --num_runs=$RUNS --min_secs=0
#       --use_xnnpack=$XNNPACK $EXTRA_FLAGS
# with stdout and stderr in OUT_DIR/<graph file name>.txt, and prints "graph=G rc=RC out=FILE".
# Environment (defaults): THREADS=1 WARMUP=10 WARMUP_MIN_SECS=0 RUNS=50 XNNPACK=true EXTRA_FLAGS=
# TASKSET (taskset). Exit status: the number of graphs whose run failed (capped at 100).
# The per-graph files are what latbench.devices.benchmark_model_output.parse_benchmark_output reads.

if [ $# -lt 4 ]; then
    echo "usage: sh bench_loop.sh BENCHMARK_MODEL CPU_MASK OUT_DIR GRAPH..." >&2
    exit 2
fi
BM="$1"; MASK="$2"; OUT="$3"; shift 3
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-10}"
WARMUP_MIN_SECS="${WARMUP_MIN_SECS:-0}"
RUNS="${RUNS:-50}"
XNNPACK="${XNNPACK:-true}"
TASKSET="${TASKSET:-taskset}"
HERE=$(dirname "$0")

mkdir -p "$OUT" || exit 2
failed=0
for g in "$@"; do
    if [ -n "$COOLDOWN_C" ]; then
        sh "$HERE/cooldown.sh" "$COOLDOWN_C" "${COOLDOWN_TIMEOUT_S:-300}" > /dev/null
    fi
    name=${g##*/}
    out="$OUT/$name.txt"
    # EXTRA_FLAGS is split into words on purpose
    $TASKSET "$MASK" "$BM" --graph="$g" --num_threads="$THREADS" --warmup_runs="$WARMUP" \
        --warmup_min_secs="$WARMUP_MIN_SECS" --num_runs="$RUNS" --min_secs=0 \
        --use_xnnpack="$XNNPACK" $EXTRA_FLAGS > "$out" 2>&1
    rc=$?
    [ $rc -ne 0 ] && failed=$((failed + 1))
    echo "graph=$g rc=$rc out=$out"
done
[ $failed -gt 100 ] && failed=100
exit $failed
