# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=sh
# The benchmark's guest side. run-bench prepends a scenario header and the
# parameters (BENCH_SIZES, BENCH_REPS, BENCH_ALL_REPS, BENCH_CALLGRIND,
# BENCH_PROFILE, BENCH_THREADS, BENCH_CHEAP, BENCH_CHEAP_THREADS, BENCH_SKIP)
# and hands the result to tests/vm/run as one scenario: every measurement
# below happens in one guest boot.
#
# Plan:
#   1. scsi_debug with max(N) two-path LUNs; multipathd starts and creates the
#      maps (timed), dm-bench saves each map's name, UUID and table.
#   2. mpath-flush --all tears the maps multipathd made down (timed: "orig").
#   3. Phase A, multipathd running: single-map latency (BENCH_REPS rounds of
#      mpath-flush MAP, multipath -f MAP, dmsetup remove MAP), then for each N
#      and BENCH_ALL_REPS rounds: mpath-flush --all (with its default jobs,
#      and with --jobs 1 when its --help offers --jobs), multipath -F,
#      multipathd del maps, a dmsetup remove loop, the sequential floor
#      (dm-bench remove-all) and the concurrent floor at each thread count
#      of BENCH_THREADS (dm-bench remove-all --threads T).
#   4. Phase B, multipathd stopped: multipath -F for each N.
#   5. Cheap maps (BENCH_CHEAP sizes, multipathd still stopped): multipath
#      maps over null_blk devices, two each, no SCSI and no daemon, so that
#      large N can be created quickly; mpath-flush --all (and --jobs 1) and
#      the concurrent floor at BENCH_CHEAP_THREADS, to show the cost per map.
# Before every timed teardown dm-bench re-creates the first N saved maps (same
# name, UUID, table: queue_if_no_path and both paths), udev settles and, in
# phase A, multipathd has adopted them. Every timing is "command" and
# "command + udevadm settle"; after each, the number of maps left is recorded.
# Phase B never restarts multipathd: with find_multipaths no it would create a
# map for every LUN, not just the first N.
#
# mpath-flush --all runs with --timeout 600: its default 30 s deadline is meant for
# one run on real hardware, not for 256 maps under emulation.
#
# Output in $MPF_LAB_OUT: bench-raw.csv (one line a measurement), maps.txt,
# callgrind.N.out, strace files, phases.txt.
. /usr/lib/mpf-lab/lib.sh

out=$MPF_LAB_OUT
raw=$out/bench-raw.csv
maps=$out/maps.txt
tfile=$out/.time
echo "kind,n,tool,rep,rc,cmd_ms,total_ms,utime_ms,stime_ms,maxrss_kb,left" > "$raw"
: > "$out/phases.txt"
max=0
for n in $BENCH_SIZES; do [ "$n" -gt "$max" ] && max=$n; done
cheap_max=0
for n in $BENCH_CHEAP; do [ "$n" -gt "$cheap_max" ] && cheap_max=$n; done
# mpath-flush's --jobs (the worker pool): measured with --jobs 1 beside the default when the
# helper offers it. report.py reads features.txt and then requires those rows: once the option
# exists, a run without them fails instead of skipping.
if mpath-flush --help 2>&1 | grep -q -e '--jobs'; then jobs=yes; else jobs=no; fi
echo "jobs=$jobs" > "$out/features.txt"
echo "udev_light=$BENCH_UDEV_LIGHT" >> "$out/features.txt"

# wanted TOOL: false for the other tools (and mpf-dryrun) the run was told to leave out
wanted() { case " $BENCH_SKIP " in *" $1 "*) return 1 ;; esac; }
phase() { echo "$(date -u +%T) $*" | tee -a "$out/phases.txt"; }
nmaps() { lab_maps | grep -c . ; }
daemon_maps() { multipathd show maps raw format "%n" 2>/dev/null | grep -c . ; }

# measure KIND N TOOL REP CMD...: time CMD then udevadm settle; one CSV line.
measure() {
        _k=$1 _n=$2 _tool=$3 _rep=$4; shift 4
        rm -f "$tfile"
        if [ "$_k" = dryrun ]; then
                # the JSON document goes to the host's schema check like every scenario's
                dm-bench time "$tfile" --settle -- "$@" > "$(lab_json_path "bench-dryrun-$_n-$_rep")" 2>> "$out/tool.log"
        else
                dm-bench time "$tfile" --settle -- "$@" >> "$out/tool.log" 2>&1
        fi
        _left=$(nmaps)
        # rc=R cmd_ms=C total_ms=T utime_ms=U stime_ms=S maxrss_kb=M -> R,C,T,U,S,M
        _vals=$(sed 's/[a-z_]*=//g; s/ /,/g' "$tfile" 2>/dev/null)
        [ -n "$_vals" ] || _vals="999,,,,,"
        echo "$_k,$_n,$_tool,$_rep,$_vals,$_left" >> "$raw"
        echo "  $_k n=$_n $_tool rep $_rep: $(cat "$tfile" 2>/dev/null) left=$_left"
        # Never let one tool's leftovers spoil the next measurement.
        if [ "$_left" -ne 0 ]; then dm-bench remove-all > /dev/null 2>&1; lab_settle; fi
}

# prepare N [FILE]: re-create the first N saved maps (of FILE, default maps.txt); in phase A
# wait until multipathd has them. Its time goes to bench-raw.csv as kind "prepare" (cmd_ms:
# created and udev settled, total_ms: multipathd has them too).
prepare() {
        _p0=$(lab_ms)
        dm-bench create "${2:-$maps}" "$1" > /dev/null || echo "prepare $1: dm-bench create failed"
        udevadm settle -t 900
        _p1=$(lab_ms)
        if lab_mpathd_running; then
                _i=0
                while [ "$(daemon_maps)" -lt "$1" ] && [ $_i -lt 1200 ]; do sleep 0.1; _i=$((_i + 1)); done
                udevadm settle -t 900
        fi
        [ "${BENCH_QUIESCE:-0}" = 1 ] && quiesce
        _p2=$(lab_ms)
        echo "prepare,$1,${2:+cheap-}dm-bench-create,1,0,$((_p1 - _p0)),$((_p2 - _p0)),,,,$(nmaps)" >> "$raw"
        [ "$(nmaps)" -eq "$1" ]
}

# CPU time (clock ticks) multipathd and udev's processes have used so far.
daemons_ticks() {
        _t=0
        for _pid in $(pidof multipathd systemd-udevd 2> /dev/null); do
                _t=$((_t + $(awk '{ print $14 + $15 }' "/proc/$_pid/stat" 2> /dev/null || echo 0)))
        done
        echo "$_t"
}
# --quiesce: wait until multipathd and udev are idle (at most 2 ticks of CPU in a second, three
# seconds in a row; 120 s at most), so that every tool's cell starts in the same state. Without
# it a cell starts while multipathd is still busy with the maps just made, which the tools that
# talk to it (mpath-flush, multipath -F, del maps) pay for and the floor does not.
quiesce() {
        _q=0 _calm=0
        while [ $_calm -lt 3 ] && [ $_q -lt 120 ]; do
                _a=$(daemons_ticks); sleep 1; _b=$(daemons_ticks)
                if [ $((_b - _a)) -le 2 ]; then _calm=$((_calm + 1)); else _calm=0; fi
                _q=$((_q + 1))
        done
        [ $_calm -ge 3 ] || echo "quiesce: multipathd or udev still busy after 120 s"
}

# check_rows KIND N TOOL REPS: every measurement exited 0 and left zero maps. A check for
# our own tools (mpath-flush, the floor); for the tools we compare with, what they did is
# recorded as a diagnostic: their failures are findings about them, not about this project.
check_rows() {
        _bad=$(awk -F, -v k="$1" -v n="$2" -v t="$3" \
                '$1 == k && $2 == n && $3 == t && ($5 != 0 || $11 != 0) { b++ } END { print b + 0 }' "$raw")
        _cnt=$(awk -F, -v k="$1" -v n="$2" -v t="$3" '$1 == k && $2 == n && $3 == t { c++ } END { print c + 0 }' "$raw")
        case $3 in
        mpf*|floor*)
                t_is "$1 n=$2 $3: $4 runs, each exit 0 and zero maps left" "$_cnt/$_bad" "$4/0" ;;
        *)
                t_is "$1 n=$2 $3: $4 runs measured" "$_cnt" "$4"
                [ "$_bad" -eq 0 ] || t_diag "$1 n=$2 $3: $_bad of $_cnt runs failed or left maps (see bench-raw.csv)" ;;
        esac
}

# dmsetup loop, udev-synchronised (dmsetup's default), one process per map
cat > /tmp/dmsetup-loop <<'EOF'
#!/bin/sh
for m in $(dmsetup ls --target multipath | awk '$1 != "No" { print $1 }'); do
        dmsetup remove "$m" || exit 1
done
EOF
chmod +x /tmp/dmsetup-loop
# teardowns KIND N FILE THREADS: one round of mpath-flush's removers and the floors (the
# other tools' follow in phase A). The floors run without udev sync; measure adds one settle.
teardowns() {
        prepare "$2" $3 && measure "$1" "$2" mpf-all "$rep" mpath-flush --all --timeout 600
        if [ "$jobs" = yes ]; then
                prepare "$2" $3 && measure "$1" "$2" mpf-jobs1 "$rep" mpath-flush --all --jobs 1 --timeout 600
        fi
        if [ "$1" = all ]; then
                prepare "$2" $3 && measure "$1" "$2" floor-seq "$rep" dm-bench remove-all
        fi
        for _t in $4; do
                prepare "$2" $3 && measure "$1" "$2" "floor-t$_t" "$rep" dm-bench remove-all --threads "$_t"
        done
}

phase "setup: udev, scsi_debug with $max LUNs"
if [ "$BENCH_UDEV_LIGHT" = 1 ]; then
        phase "udev: sg3-utils-udev's path rules masked (--udev-light): these times are not Debian's"
        lab_udev_light
fi
lab_udev_start
t0=$(lab_ms)
lab_san "$max"
udevadm settle -t 1800
t1=$(lab_ms)
echo "setup,$max,paths-settle,1,0,$((t1 - t0)),$((t1 - t0)),,,,0" >> "$raw"
phase "paths settled in $((t1 - t0)) ms ($(ls -d /sys/block/sd* | wc -l) sd devices)"
t_check "multipathd starts" lab_mpathd_start

phase "setup: multipathd creates $max maps"
# multipathd makes the maps of the paths it finds when it starts; running
# multipath beside it would only race it for the same maps. If it stalls for a
# minute, multipath is asked to make what is missing.
t0=$(lab_ms)
i=0
while [ "$(nmaps)" -lt "$max" ] && [ $i -lt 1800 ]; do
        sleep 1; i=$((i + 1))
        [ $((i % 60)) -eq 0 ] && multipath -v0 > /dev/null 2>&1
done
udevadm settle -t 1800
t1=$(lab_ms)
echo "setup,$max,multipath-create,1,0,$((t1 - t0)),$((t1 - t0)),,,,$(nmaps)" >> "$raw"
phase "multipathd made $(nmaps) maps in $((t1 - t0)) ms"
t_is "multipath created $max maps" "$(nmaps)" "$max"
dm-bench save "$maps"
t_is "$max maps saved" "$(grep -c . "$maps")" "$max"
t_like "saved maps are multipath maps with mpath- UUIDs, queueing, two paths" \
        "$(head -n 1 "$maps")" '^[^ ]+ mpath-[^ ]+ 0 [0-9]+ multipath [0-9]+ .*queue_if_no_path'
i=0
while [ "$(daemon_maps)" -lt "$max" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
measure orig "$max" mpf-all 1 mpath-flush --all --timeout 600
check_rows orig "$max" mpf-all 1

phase "faithfulness: re-create $max maps, compare tables"
t0=$(lab_ms)
t_check "dm-bench re-creates $max maps" prepare "$max"
t1=$(lab_ms)
echo "setup,$max,dm-bench-create,1,0,$((t1 - t0)),$((t1 - t0)),,,,$(nmaps)" >> "$raw"
dm-bench save "$out/maps-again.txt" > /dev/null
t_check "re-created maps have the saved names, UUIDs and tables" cmp "$maps" "$out/maps-again.txt"
t_is "multipathd monitors the re-created maps" "$(daemon_maps)" "$max"
dm-bench remove-all > /dev/null; lab_settle

phase "phase A (multipathd running): single-map latency, $BENCH_REPS rounds"
map1=$(head -n 1 "$maps" | cut -d' ' -f1)
r=1
while [ $r -le "$BENCH_REPS" ]; do
        prepare 1 && measure single 1 mpf "$r" mpath-flush "$map1"
        prepare 1 && measure single 1 multipath-f "$r" multipath -f "$map1"
        prepare 1 && measure single 1 dmsetup "$r" dmsetup remove "$map1"
        r=$((r + 1))
done
for tool in mpf multipath-f dmsetup; do check_rows single 1 $tool "$BENCH_REPS"; done

for n in $BENCH_SIZES; do
        phase "phase A: N=$n"
        for c in $BENCH_CALLGRIND; do
                [ "$c" = "$n" ] || continue
                prepare "$n"
                rm -f "$tfile"
                dm-bench time "$tfile" -- valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$n.out" \
                        mpath-flush --dry-run --all --json > "$out/callgrind.$n.json" 2> "$out/callgrind.$n.log"
                cp "$out/callgrind.$n.json" "$(lab_json_path "bench-callgrind-$n")"
                ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$out/callgrind.$n.out" | head -n 1)
                echo "callgrind,$n,mpf-dryrun-ir,1,$(sed 's/ .*//; s/rc=//' "$tfile"),$ir,$ir,,,,$(nmaps)" >> "$raw"
                phase "callgrind --dry-run --all at N=$n: $ir instructions"
                t_like "callgrind counted the instructions of --dry-run --all at N=$n" "$ir" '^[0-9]+$'
                dm-bench remove-all > /dev/null; lab_settle
        done
        rep=1
        while [ $rep -le "$BENCH_ALL_REPS" ]; do
                if wanted mpf-dryrun; then
                        prepare "$n" && measure dryrun "$n" mpf-dryrun "$rep" mpath-flush --dry-run --all --json
                        dm-bench remove-all > /dev/null; lab_settle
                fi
                teardowns all "$n" "" "$BENCH_THREADS"
                wanted multipath-F-daemon && prepare "$n" && measure all "$n" multipath-F-daemon "$rep" multipath -F
                wanted multipathd-del-maps && prepare "$n" && measure all "$n" multipathd-del-maps "$rep" multipathd del maps
                wanted dmsetup-loop && prepare "$n" && measure all "$n" dmsetup-loop "$rep" /tmp/dmsetup-loop
                rep=$((rep + 1))
        done
        for tool in mpf-all $([ "$jobs" = yes ] && echo mpf-jobs1) floor-seq \
                $(for t in $BENCH_THREADS; do echo "floor-t$t"; done) \
                multipath-F-daemon multipathd-del-maps dmsetup-loop; do
                wanted "$tool" && check_rows all "$n" "$tool" "$BENCH_ALL_REPS"
        done
done

if [ -n "$BENCH_PROFILE" ]; then
        n=$BENCH_PROFILE
        phase "profile: mpath-flush --all at N=$n under strace"
        prepare "$n"
        strace -f -tt -T -o "$out/strace-all.$n.txt" mpath-flush --all --timeout 600 -v > "$out/profile-all.$n.log" 2>&1
        lab_settle
        t_is "profile run removed every map" "$(nmaps)" 0
        dm-bench remove-all > /dev/null; lab_settle
        prepare "$n"
        strace -c -f -o "$out/strace-c-all.$n.txt" mpath-flush --all --timeout 600 > /dev/null 2>&1
        lab_settle
        dm-bench remove-all > /dev/null; lab_settle
fi

phase "phase B (multipathd stopped): multipath -F"
t_check "multipathd stops" lab_mpathd_stop
for n in $BENCH_SIZES; do
        wanted multipath-F-nodaemon || continue
        rep=1
        while [ $rep -le "$BENCH_ALL_REPS" ]; do
                prepare "$n" && measure all "$n" multipath-F-nodaemon "$rep" multipath -F
                rep=$((rep + 1))
        done
        check_rows all "$n" multipath-F-nodaemon "$BENCH_ALL_REPS"
done

if [ "$cheap_max" -gt 0 ]; then
        phase "cheap maps: null_blk with $((2 * cheap_max)) devices"
        t0=$(lab_ms)
        modprobe null_blk nr_devices=$((2 * cheap_max)) gb=1
        udevadm settle -t 1800
        t1=$(lab_ms)
        echo "setup,$cheap_max,cheap-paths-settle,1,0,$((t1 - t0)),$((t1 - t0)),,,,0" >> "$raw"
        phase "$(ls -d /sys/block/nullb* | wc -l) null_blk devices settled in $((t1 - t0)) ms"
        dm-bench cheap-maps "$out/cheap-maps.txt" "$cheap_max" > /dev/null
        t_is "$cheap_max cheap maps described" "$(grep -c . "$out/cheap-maps.txt")" "$cheap_max"
        for n in $BENCH_CHEAP; do
                phase "cheap maps: N=$n"
                rep=1
                while [ $rep -le "$BENCH_ALL_REPS" ]; do
                        teardowns cheap "$n" "$out/cheap-maps.txt" "$BENCH_CHEAP_THREADS"
                        rep=$((rep + 1))
                done
                for tool in mpf-all $([ "$jobs" = yes ] && echo mpf-jobs1) \
                        $(for t in $BENCH_CHEAP_THREADS; do echo "floor-t$t"; done); do
                        check_rows cheap "$n" "$tool" "$BENCH_ALL_REPS"
                done
        done
fi
phase "done"
t_done
