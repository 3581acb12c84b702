#!/system/bin/sh
# setup.sh - prepare an Android phone for stable single-core timings.
#
#   sh setup.sh [CPUS] [MODE]
#
# CPUS  the cores to fix, default "2 3": the Pixel 1's (Snapdragon 821) 2.15 GHz Kryo "gold"
#       cluster; latbench pins benchmark_model to cpu3 (taskset mask 8).
# MODE  "performance" (default): scaling_governor=performance (runs at the top frequency), or
#       a frequency in kHz, e.g. 1824000: scaling_governor=userspace, scaling_setspeed and
#       scaling_min/max_freq set to it (a fixed clock below the thermal-throttling point).
#
# Changing governors needs root (id -u = 0, e.g. after 'adb root' on a userdebug build). Without
# root nothing is changed; the script says so and prints the current settings. It prints what it
# did, one line per action ("set cpu3.governor=performance (was sched)"), and ends with the
# read_conditions-style state of each cpu. Exit 0 unless a write failed (1) or MODE is bad (2).
# LATBENCH_ROOT, empty on a phone, prefixes /sys (run against a copied sysfs tree).

R="${LATBENCH_ROOT:-}"
CPUS="${1:-2 3}"
MODE="${2:-performance}"

case "$MODE" in
    performance) ;;
    *[!0-9]*|"") echo "setup: MODE must be 'performance' or a frequency in kHz, got '$MODE'" >&2; exit 2 ;;
esac

rd() { if [ -r "$1" ]; then v=$(cat "$1" 2>/dev/null); echo "${v:-NA}"; else echo NA; fi; }

wr() {  # wr FILE VALUE LABEL
    old=$(rd "$1")
    if echo "$2" > "$1" 2>/dev/null; then
        echo "set $3=$2 (was $old)"
    else
        echo "FAILED to set $3=$2 (is $old)"
        status=1
    fi
}

status=0
uid=$(id -u 2>/dev/null)
if [ "$uid" = "0" ]; then
    echo "root=1"
    for c in $CPUS; do
        d="$R/sys/devices/system/cpu/cpu$c"
        [ -e "$d/online" ] && [ "$(rd "$d/online")" != "1" ] && wr "$d/online" 1 "cpu$c.online"
        f="$d/cpufreq"
        if [ "$MODE" = "performance" ]; then
            wr "$f/scaling_governor" performance "cpu$c.governor"
        else
            avail=$(rd "$f/scaling_available_frequencies")
            case " $avail " in
                *" $MODE "*|" NA ") ;;
                *) echo "note: $MODE kHz is not in cpu$c's scaling_available_frequencies ($avail)" ;;
            esac
            wr "$f/scaling_governor" userspace "cpu$c.governor"
            # widen the window to the hardware limits first, so min <= max holds at every step
            lo=$(rd "$f/cpuinfo_min_freq"); hi=$(rd "$f/cpuinfo_max_freq")
            [ "$lo" != NA ] && wr "$f/scaling_min_freq" "$lo" "cpu$c.min_freq_khz"
            [ "$hi" != NA ] && wr "$f/scaling_max_freq" "$hi" "cpu$c.max_freq_khz"
            wr "$f/scaling_max_freq" "$MODE" "cpu$c.max_freq_khz"
            wr "$f/scaling_min_freq" "$MODE" "cpu$c.min_freq_khz"
            wr "$f/scaling_setspeed" "$MODE" "cpu$c.setspeed_khz"
        fi
    done
else
    echo "root=0"
    echo "note: not root (uid=$uid): governors left unchanged; run 'adb root' on a userdebug build to fix the clock"
fi

for c in $CPUS; do
    f="$R/sys/devices/system/cpu/cpu$c/cpufreq"
    echo "cpu$c.governor=$(rd "$f/scaling_governor")"
    echo "cpu$c.cur_freq_khz=$(rd "$f/scaling_cur_freq")"
done
exit $status
