#!/system/bin/sh
# cooldown.sh - wait until the phone has cooled down.
#
#   sh cooldown.sh [MAX_TEMP_C] [TIMEOUT_S] [POLL_S]      (defaults: 40 300 5)
#
# Polls every thermal zone (/sys/class/thermal/thermal_zone*/temp) until the hottest one is below
# MAX_TEMP_C (whole degrees), or TIMEOUT_S seconds have passed. Readings are normalised to degrees:
# >= 1000 is millidegrees, >= 200 decidegrees, else degrees; unreadable or implausible zones
# (below -40 or above 150 C) are skipped. Prints "max_temp_c=T zone=NAME" per poll and finally
# "cool=1 waited_s=S" (exit 0) or "cool=0 waited_s=S" (exit 1 on timeout).
# LATBENCH_ROOT, empty on a phone, prefixes /sys.

R="${LATBENCH_ROOT:-}"
LIMIT="${1:-40}"
TIMEOUT="${2:-300}"
POLL="${3:-5}"

hottest() {
    best=-1000
    name=none
    for z in "$R"/sys/class/thermal/thermal_zone*; do
        [ -r "$z/temp" ] || continue
        t=$(cat "$z/temp" 2>/dev/null)
        case "$t" in ''|*[!0-9-]*) continue ;; esac
        a=${t#-}
        if [ "$a" -ge 1000 ]; then
            t=$((t / 1000))
        elif [ "$a" -ge 200 ]; then
            t=$((t / 10))
        fi
        [ "$t" -lt -40 ] && continue
        [ "$t" -gt 150 ] && continue
        if [ "$t" -gt "$best" ]; then
            best=$t
            name=${z##*/}
        fi
    done
    echo "$best $name"
}

start=$(date +%s)
while :; do
    set -- $(hottest)
    now=$(date +%s)
    waited=$((now - start))
    echo "max_temp_c=$1 zone=$2"
    if [ "$1" -lt "$LIMIT" ]; then
        echo "cool=1 waited_s=$waited"
        exit 0
    fi
    if [ "$waited" -ge "$TIMEOUT" ]; then
        echo "cool=0 waited_s=$waited"
        exit 1
    fi
    sleep "$POLL"
done
