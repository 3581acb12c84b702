#!/bin/sh
# reset_clocks.sh - undo lock_clocks.sh on one NVIDIA GPU.
#
#   sh reset_clocks.sh GPU_INDEX [--keep-persistence]
#
# Resets the graphics and memory clocks (nvidia-smi --reset-gpu-clocks / --reset-memory-clocks),
# turns persistence mode off unless --keep-persistence, and removes the state file
# ($LATBENCH_GPU_STATE_DIR/gpu<N>.json) so latbench no longer records a lock.
# NVIDIA_SMI overrides the nvidia-smi command. Exit 0 on success, 1 when nvidia-smi refused.

if [ $# -lt 1 ]; then
    echo "usage: sh reset_clocks.sh GPU_INDEX [--keep-persistence]" >&2
    exit 2
fi
SMI="${NVIDIA_SMI:-nvidia-smi}"
GPU="$1"
STATE="${LATBENCH_GPU_STATE_DIR:-/tmp/latbench-gpu}"
status=0
$SMI -i "$GPU" --reset-gpu-clocks || status=1
$SMI -i "$GPU" --reset-memory-clocks 2>/dev/null || true  # pre-Ampere GPUs have no memory lock
if [ "$2" != "--keep-persistence" ]; then
    $SMI -i "$GPU" -pm 0 || status=1
fi
rm -f "$STATE/gpu$GPU.json"
echo "reset gpu$GPU"
exit $status
