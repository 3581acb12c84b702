#!/system/bin/sh
# read_conditions.sh - print the measurement conditions of an Android phone, one key=value a line.
#
#   sh read_conditions.sh [CPU...]        (default: every cpu)
#
# Per cpu N:   cpuN.online  cpuN.governor  cpuN.cur_freq_khz  cpuN.min_freq_khz
#              cpuN.max_freq_khz  cpuN.cpuinfo_max_freq_khz
#              cpuN.time_in_state  (cpufreq/stats/time_in_state as FREQ:TICKS,... ; ticks of 10 ms
#                                   spent at each frequency since boot: two readings give the
#                                   frequency a run used)
# Per zone K:  thermal_zoneK.type  thermal_zoneK.temp   (the raw sysfs value: millidegrees,
#              decidegrees or degrees C depending on the kernel driver)
# A value that cannot be read (missing file, no permission, offline core) is printed as NA.
# latbench's AndroidDevice parses exactly this format (latbench.devices.android.parse_conditions).
#
# POSIX sh only (mksh, toybox, busybox ash). LATBENCH_ROOT, empty on a phone, prefixes /sys so
# the script can be run against a copied sysfs tree.

R="${LATBENCH_ROOT:-}"

rd() {
    if [ -r "$1" ]; then
        v=$(cat "$1" 2>/dev/null)
        [ -n "$v" ] && { echo "$v"; return; }
    fi
    echo NA
}

cpus="$*"
if [ -z "$cpus" ]; then
    for d in "$R"/sys/devices/system/cpu/cpu[0-9]*; do
        [ -d "$d" ] || continue
        cpus="$cpus ${d##*/cpu}"
    done
fi

for c in $cpus; do
    d="$R/sys/devices/system/cpu/cpu$c"
    if [ -e "$d/online" ]; then
        echo "cpu$c.online=$(rd "$d/online")"
    else
        echo "cpu$c.online=1"   # cpu0 often has no 'online' file: it cannot be unplugged
    fi
    echo "cpu$c.governor=$(rd "$d/cpufreq/scaling_governor")"
    echo "cpu$c.cur_freq_khz=$(rd "$d/cpufreq/scaling_cur_freq")"
    echo "cpu$c.min_freq_khz=$(rd "$d/cpufreq/scaling_min_freq")"
    echo "cpu$c.max_freq_khz=$(rd "$d/cpufreq/scaling_max_freq")"
    echo "cpu$c.cpuinfo_max_freq_khz=$(rd "$d/cpufreq/cpuinfo_max_freq")"
    tis=NA
    if [ -r "$d/cpufreq/stats/time_in_state" ]; then
        tis=""
        while read -r f t; do
            [ -n "$f" ] && tis="$tis${tis:+,}$f:$t"
        done < "$d/cpufreq/stats/time_in_state"
        [ -n "$tis" ] || tis=NA
    fi
    echo "cpu$c.time_in_state=$tis"
done

for z in "$R"/sys/class/thermal/thermal_zone*; do
    [ -d "$z" ] || continue
    n=${z##*/}
    echo "$n.type=$(rd "$z/type")"
    echo "$n.temp=$(rd "$z/temp")"
done
exit 0
