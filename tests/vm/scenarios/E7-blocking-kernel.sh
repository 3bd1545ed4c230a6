#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E7: a blocking call of the kernel's own that the deadline must bound too,
# caught by `out=$(mpath-flush --json -t 3 ...)` (a caller that reads our output
# until EOF): a path device open during SCSI error recovery. Every command is
# ignored (scsi_debug opts=4), so a read times out and both hosts enter error
# handling; opening any path device (sd_open) then waits for its end, in D state.
# The path devices are opened and locked by the write-back worker, which hands the
# locks back (pathlock.c, syncer.c). Three maps on the same two hosts, two callers at once:
#   (a) one map, the sequential path;
#   (b) --jobs 2 over the two others, the pool (each pool worker has its own
#       write-back worker).
# Each answers within the deadline and a grace (under 7 s for -t 3, generous for a
# loaded host; the old helper does not answer until the recovery ends) with
# `timeout` at `lock`, names the stuck worker and the device it was opening; the
# worker holds nothing of ours (stdio on /dev/null, no lock: the map lock is free
# at once); the maps are left as found. Once the recovery ends the workers go,
# and the maps are flushed as usual.
# And the map's last close (c), before that, on a map of its own: the writer of
# a transient open writes 4 MiB without fsync and closes, after the flush step's
# fsync (while a holder keeps the map open, so that sole-opener waits), and from
# then on every SCSI command takes 0.5 s, one at a time per path. The map's last
# close would write that back (blkdev_put: sync_blockdev) for seconds: the
# helper's own close is never the last, the write-back worker keeps its open and
# writes back and closes last, bounded. The helper answers within the deadline and
# a grace (-t 6: under 10 s; the old helper closes last itself and waits for the
# write-back) with `timeout` at `remove`, names the worker, keeps the map with
# queueing restored; the 4 MiB are on the disk once the stall ends.
# And (d): SIGTERM to the whole process group (Ctrl-C, timeout(1), a unit's stop) while
# the write-back worker writes back: the run holds it back and removes the map
# (exit 0); the worker does not die of it either.
# Without udev (a closed writable fd makes udev run blkid on the map, which would
# hold it open) and without multipathd (its checkers would queue more commands).
. /usr/lib/mpf-lab/lib.sh

sdbg=/sys/bus/pseudo/drivers/scsi_debug
lab_setup 3 multipathd
t_check "multipathd stops" lab_mpathd_stop
maps=$(lab_maps)
for m in $maps; do t_check "$m: queueing on again" dmsetup message "$m" 0 queue_if_no_path; done
lab_udev_stop
others=$(printf '%s\n' $maps | sed 1d)
uuid() { dmsetup info -c --noheadings -o uuid "$1"; }
lock_free() { flock -n "/run/mpath-flush/lock/$(uuid "$1")" true; }
paths=$(lab_map_paths "$map")
# alive PID: the process exists and is not a zombie
alive() {
        case $1 in '' | *[!0-9]*) return 1 ;; esac
        _st=$(cut -d' ' -f3 "/proc/$1/stat" 2> /dev/null); [ -n "$_st" ] && [ "$_st" != Z ]
}
# run_bg NAME ARGS...: out=$(ARGS) in the background, as a caller capturing our output does
run_bg() {
        _n=$1; shift
        ( _s=$(lab_ms); _o=$("$@" 2> "$MPF_LAB_OUT/$_n.err"); _rc=$?
          printf '%s' "$_o" > "$MPF_LAB_OUT/$_n.json"; echo "$_rc $(($(lab_ms) - _s))" > "$MPF_LAB_OUT/$_n.rc" ) &
}
# wait_file FILE SECONDS
wait_file() { _i=0; until [ -s "$1" ] || [ $_i -ge $(($2 * 20)) ]; do sleep 0.05; _i=$((_i + 1)); done; [ -s "$1" ]; }
# wait_log FILE PATTERN SECONDS
wait_log() { _i=0; until grep -q -- "$2" "$1" 2> /dev/null || [ $_i -ge $(($3 * 100)) ]; do sleep 0.01; _i=$((_i + 1)); done; grep -q -- "$2" "$1"; }
set_delay() {
        # scsi_debug refuses a new delay while commands are queued: retry until it takes it
        _i=0
        until (echo "$1" > $sdbg/delay) 2> /dev/null || [ $_i -ge 600 ]; do sleep 0.1; _i=$((_i + 1)); done
}

# ---- (c) the map's last close writes back what a writer dirtied after the flush step ----
cm=$(printf '%s\n' $maps | tail -n 1)
cdm=$(lab_map_dev "$cm")
cpaths=$(lab_map_paths "$cm")
dd if=/dev/urandom of="$MPF_LAB_OUT/pattern" bs=1M count=4 status=none
echo 128 > "/sys/block/$cdm/queue/max_sectors_kb" 2> /dev/null || t_diag "max_sectors_kb of $cdm stays $(cat "/sys/block/$cdm/queue/max_sectors_kb")"
qd=
for p in $cpaths; do qd="$qd $p:$(cat "/sys/block/$p/device/queue_depth")"; echo 1 > "/sys/block/$p/device/queue_depth"; done
# something for the flush step to write back, so that it takes a moment
t_check "(c) a first writer writes 64 KiB to $cm and closes it" dd if=/dev/urandom of="/dev/$cdm" bs=64k count=1 conv=nocreat status=none
t_check "(c) every SCSI command now takes 0.1 s" sh -c "echo 25 > $sdbg/delay"
s0=$(lab_ms)
run_bg c mpath-flush --json -vv -t 6 "$cm"
# a holder opens the map once the in-use scan is over: sole-opener waits for it to close
t_check "(c) the flush step starts" wait_log "$MPF_LAB_OUT/c.err" "flush: starting" 20
exec 3< "/dev/$cdm"
t1=$(($(lab_ms) - s0))
t_check "(c) the flush step's fsync is done" wait_log "$MPF_LAB_OUT/c.err" "flush: fsync done" 20
t_diag "(c) holder opened at $t1 ms (after 'flush: starting'), fsync done seen at $(($(lab_ms) - s0)) ms"
t_check "(c) a writer writes 4 MiB to the map, no fsync, and closes it" \
        dd if="$MPF_LAB_OUT/pattern" of="/dev/$cdm" bs=1M conv=nocreat,notrunc status=none
t_check "(c) every SCSI command now takes 0.5 s" sh -c "echo 125 > $sdbg/delay"
exec 3<&-
t_diag "(c) holder closed at $(($(lab_ms) - s0)) ms; dirty: $(awk '/^Dirty:/ { print $2, $3 }' /proc/meminfo)"
wait_file "$MPF_LAB_OUT/c.rc" 30
rc= ms=
[ -s "$MPF_LAB_OUT/c.rc" ] && read -r rc ms < "$MPF_LAB_OUT/c.rc"
out=$(cat "$MPF_LAB_OUT/c.json" 2> /dev/null)
printf '%s\n' "$out"
grep -v libdevmapper "$MPF_LAB_OUT/c.err"
t_diag "(c) out=\$(mpath-flush --json -t 6 $cm) returned in $ms ms"
t_check "(c) within the deadline and a grace (10 s)" test "${ms:-99999}" -lt 10000
t_is "(c) exit 5 (timeout)" "$rc" 5
t_is "(c) at remove: the map's last close" "$(printf '%s' "$out" | jq -r '.maps[0].step')" remove
worker=$(printf '%s' "$out" | jq -r '.maps[0].stuck_worker')
t_like "(c) the stuck worker is named" "$worker" '^[0-9]+$'
t_like "(c) and in the reason" "$(printf '%s' "$out" | jq -r '.maps[0].reason')" "write-back of what others wrote .*pid $worker"
t_check "(c) it is still writing back" alive "$worker"
t_diag "(c) worker $worker: $(cut -d' ' -f3 "/proc/$worker/stat" 2> /dev/null) in $(cat "/proc/$worker/wchan" 2> /dev/null)"
t_is "(c) its stdout is not ours" "$(readlink "/proc/$worker/fd/1")" /dev/null
t_check "(c) the map is kept" lab_map_exists "$cm"
t_check "(c) queueing was restored" lab_map_queueing "$cm"
t_check_fails "(c) the map is not suspended" lab_map_suspended "$cm"
set_delay 0
t_is "(c) commands are fast again" "$(cat $sdbg/delay)" 0
_i=0
while alive "$worker" && [ $_i -lt 600 ]; do sleep 0.1; _i=$((_i + 1)); done
t_check_fails "(c) the worker ends when its write-back does" alive "$worker"
p1=$(printf '%s\n' $cpaths | head -n 1)
t_check "(c) the writer's 4 MiB are on the disk (read from a path, O_DIRECT)" \
        sh -c "dd if=/dev/$p1 iflag=direct bs=1M count=4 status=none | cmp -s - '$MPF_LAB_OUT/pattern'"
wait_file "$MPF_LAB_OUT/c.rc" 60 || true
for x in $qd; do echo "${x#*:}" > "/sys/block/${x%%:*}/device/queue_depth"; done

# ---- (a), (b) a path device open while its SCSI host is in error recovery ----
for p in $paths; do
        echo 1 > "/sys/block/$p/device/timeout"
        echo 5 > "/sys/block/$p/device/eh_timeout"
done
echo 1 > $sdbg/every_nth
t_check "every SCSI command is now ignored (it times out)" sh -c "echo 4 > $sdbg/opts"
readers=
for p in $paths; do
        dd if="/dev/$p" of=/dev/null bs=4k count=1 iflag=direct status=none 2> /dev/null &
        readers="$readers $!"
done
hosts=
for p in $paths; do hosts="$hosts $(readlink -f "/sys/block/$p/device" | sed -n 's|.*/\(host[0-9]*\)/.*|\1|p')"; done
in_recovery() { for h in $hosts; do grep -q recovery "/sys/class/scsi_host/$h/state" || return 1; done; }
_i=0
until in_recovery || [ $_i -ge 100 ]; do sleep 0.1; _i=$((_i + 1)); done
t_check "both SCSI hosts are in error recovery" in_recovery
run_bg a mpath-flush --json -t 3 "$map"
run_bg b mpath-flush --json --jobs 2 -t 3 $others
wait_file "$MPF_LAB_OUT/a.rc" 12
wait_file "$MPF_LAB_OUT/b.rc" 2
t_check "the hosts were still in error recovery" in_recovery
# check_run NAME: how the caller NAME was answered
check_run() {
        _n=$1
        t_check "($_n) out=\$(mpath-flush --json -t 3 ...) returns" test -s "$MPF_LAB_OUT/$_n.rc"
        rc= ms=
        [ -s "$MPF_LAB_OUT/$_n.rc" ] && read -r rc ms < "$MPF_LAB_OUT/$_n.rc"
        out=$(cat "$MPF_LAB_OUT/$_n.json" 2> /dev/null)
        printf '%s\n' "$out"
        cat "$MPF_LAB_OUT/$_n.err"
        t_diag "($_n) out=\$(mpath-flush --json -t 3 ...) returned in $ms ms"
        t_check "($_n) within the deadline and a grace (7 s)" test "${ms:-99999}" -lt 7000
        t_is "($_n) exit 5 (timeout)" "$rc" 5
}
# field F: field F of map $_m's result in $out
field() { printf '%s' "$out" | jq -r --arg m "$_m" ".maps[] | select(.map == \$m) | .$1"; }
# check_map NAME MAP: what the caller NAME was told about MAP
check_map() {
        _n=$1 _m=$2
        t_is "($_n) $_m: timeout" "$(field result)" timeout
        t_is "($_n) $_m: at lock" "$(field step)" lock
        worker=$(field stuck_worker)
        t_like "($_n) $_m: the stuck worker is named" "$worker" '^[0-9]+$'
        t_like "($_n) $_m: and in the reason, with the device it was opening" \
                "$(field reason)" "opening /dev/sd[a-z]+ did not return .*pid $worker"
        t_check "($_n) $_m: it is still in the kernel" alive "$worker"
        t_diag "($_n) worker $worker: $(cut -d' ' -f3 "/proc/$worker/stat" 2> /dev/null) in $(cat "/proc/$worker/wchan" 2> /dev/null), fds: $(ls "/proc/$worker/fd" 2> /dev/null | tr '\n' ' ')"
        t_is "($_n) $_m: its stdout is not ours" "$(readlink "/proc/$worker/fd/1")" /dev/null
        t_is "($_n) $_m: it holds stdio and its socket only" "$(ls "/proc/$worker/fd" | wc -l)" 4
        t_check "($_n) $_m: the map lock is free" lock_free "$_m"
        t_check "($_n) $_m: the map is there" lab_map_exists "$_m"
        t_check "($_n) $_m: queueing untouched" lab_map_queueing "$_m"
        t_check_fails "($_n) $_m: the map is not suspended" lab_map_suspended "$_m"
        workers="$workers $worker"
}
workers=
check_run a
check_map a "$map"
check_run b
for m in $others; do check_map b "$m"; done
# end the error recovery: the next TEST UNIT READY succeeds
echo 0 > $sdbg/opts
echo 0 > $sdbg/every_nth
_i=0
while in_recovery && [ $_i -lt 300 ]; do sleep 0.1; _i=$((_i + 1)); done
for worker in $workers; do
        _i=0
        while alive "$worker" && [ $_i -lt 300 ]; do sleep 0.1; _i=$((_i + 1)); done
        t_check_fails "worker $worker ends with the error recovery" alive "$worker"
done
for r in $readers; do wait "$r"; done
wait_file "$MPF_LAB_OUT/a.rc" 60 || true
wait_file "$MPF_LAB_OUT/b.rc" 60 || true
for p in $(for m in $maps; do lab_map_paths "$m"; done); do echo running > "/sys/block/$p/device/state" 2> /dev/null; done

# ---- (d) SIGTERM to the whole process group during the flush step ----
# A terminal's Ctrl-C, timeout(1) and a unit's stop signal the whole process group or
# cgroup. The run holds SIGTERM back and finishes; its workers must not die of it
# either (the write-back worker did: failed at flush, the map kept).
for p in $cpaths; do echo 1 > "/sys/block/$p/device/queue_depth"; done
t_check "(d) a writer writes 4 MiB to $cm and closes it" dd if="$MPF_LAB_OUT/pattern" of="/dev/$cdm" bs=1M conv=nocreat,notrunc status=none
t_check "(d) every SCSI command now takes 0.1 s" sh -c "echo 25 > $sdbg/delay"
setsid mpath-flush --json -vv -t 20 "$cm" > "$MPF_LAB_OUT/d.json" 2> "$MPF_LAB_OUT/d.err" &
dpid=$!
t_check "(d) the flush step starts" wait_log "$MPF_LAB_OUT/d.err" "flush: starting" 20
sleep 0.2
t_check "(d) SIGTERM to its process group, during the write-back" kill -TERM "-$dpid"
wait "$dpid"
d_rc=$?
set_delay 0
for x in $qd; do echo "${x#*:}" > "/sys/block/${x%%:*}/device/queue_depth"; done
cat "$MPF_LAB_OUT/d.json"
grep -E "flush|remove|worker" "$MPF_LAB_OUT/d.err" | grep -v libdevmapper | tail -n 8
t_is "(d) the run rode it out: exit 0" "$d_rc" 0
t_is "(d) removed" "$(jq -r '.maps[0].result' "$MPF_LAB_OUT/d.json")" removed
t_check_fails "(d) $cm is gone" lab_map_exists "$cm"

maps=$(printf '%s\n' $maps | grep -vx "$cm")
lab_run g mpath-flush --json -t 20 $maps
t_is "then the maps are removed as usual (exit 0)" "$g_rc" 0
for m in $maps; do t_check_fails "$m is gone" lab_map_exists "$m"; done
t_done
