#!/bin/sh
# lock_clocks.sh - pin one NVIDIA GPU's clocks for stable timings, and record what was set.
#
#   sh lock_clocks.sh GPU_INDEX [GRAPHICS_MHZ] [MEMORY_MHZ]
#
# Turns persistence mode on (the driver stays loaded between processes, so clocks and the
# context do not reset between latbench runs), then locks the graphics clock to GRAPHICS_MHZ
# (nvidia-smi --lock-gpu-clocks=MIN,MAX with MIN=MAX; default: the GPU's default application
# clock, clocks.default_applications.graphics) and, when MEMORY_MHZ is given, the memory clock
# (--lock-memory-clocks, Ampere and later). Needs root (or the admin rights nvidia-smi asks for).
# Writes $LATBENCH_GPU_STATE_DIR/gpu<N>.json (default /tmp/latbench-gpu), which latbench's gpu
# device records in its fingerprint while the lock is in force; reset_clocks.sh removes it.
# NVIDIA_SMI overrides the nvidia-smi command. Exit 0 on success, 1 when nvidia-smi refused.

if [ $# -lt 1 ]; then
    echo "usage: sh lock_clocks.sh GPU_INDEX [GRAPHICS_MHZ] [MEMORY_MHZ]" >&2
    exit 2
fi
SMI="${NVIDIA_SMI:-nvidia-smi}"
GPU="$1"; GFX="$2"; MEM="$3"
STATE="${LATBENCH_GPU_STATE_DIR:-/tmp/latbench-gpu}"
case "$GPU$GFX$MEM" in *[!0-9]*) echo "lock_clocks: GPU_INDEX and the clocks must be integers" >&2; exit 2 ;; esac

if [ -z "$GFX" ]; then
    GFX=$($SMI -i "$GPU" --query-gpu=clocks.default_applications.graphics --format=csv,noheader,nounits) || exit 1
    GFX=$(echo "$GFX" | tr -d ' ')
fi
$SMI -i "$GPU" -pm 1 || exit 1
$SMI -i "$GPU" --lock-gpu-clocks="$GFX,$GFX" || exit 1
if [ -n "$MEM" ]; then
    $SMI -i "$GPU" --lock-memory-clocks="$MEM,$MEM" || exit 1
fi
mkdir -p "$STATE" || exit 1
echo "{\"graphics_mhz\": $GFX, \"memory_mhz\": ${MEM:-null}, \"persistence\": true}" > "$STATE/gpu$GPU.json"
echo "locked gpu$GPU graphics_mhz=$GFX memory_mhz=${MEM:-unchanged} persistence=1"
