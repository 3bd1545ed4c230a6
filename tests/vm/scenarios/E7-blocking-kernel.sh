#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E7: a blocking call of the kernel's own that the deadline must bound too,
# caught by `out=$(mpath-flush --json -t 3 MAP)` (a caller that reads our output
# until EOF): a path device open during SCSI error recovery. Every command is
# ignored (scsi_debug opts=4), so a read times out and both hosts enter error
# handling; opening a path device (sd_open) then waits for its end, in D state.
# The path locks are taken by a worker that holds them: the helper answers
# within 4 s with `timeout` at `lock`, names the stuck worker and the device it
# was opening, and the map is left as found; once the recovery ends, the worker
# goes and the map is flushed as usual.
# Without udev and without multipathd (its checkers would queue more commands).
# mpf-lab: mode=fast timeout=300
. /usr/lib/mpf-lab/lib.sh

sdbg=/sys/bus/pseudo/drivers/scsi_debug
lab_setup 1 multipathd
t_check "multipathd stops" lab_mpathd_stop
t_check "queueing on again" dmsetup message "$map" 0 queue_if_no_path
lab_udev_stop
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
wait_file "$MPF_LAB_OUT/a.rc" 8
t_check "(a) out=\$(mpath-flush --json -t 3) returns" test -s "$MPF_LAB_OUT/a.rc"
rc= ms=
[ -s "$MPF_LAB_OUT/a.rc" ] && read -r rc ms < "$MPF_LAB_OUT/a.rc"
out=$(cat "$MPF_LAB_OUT/a.json" 2> /dev/null)
printf '%s\n' "$out"
cat "$MPF_LAB_OUT/a.err"
t_check "the hosts were still in error recovery" in_recovery
t_diag "(a) out=\$(mpath-flush --json -t 3) returned in $ms ms"
t_check "(a) within 4 s" test "${ms:-99999}" -lt 4000
t_is "(a) exit 5 (timeout)" "$rc" 5
t_is "(a) at lock" "$(printf '%s' "$out" | jq -r '.maps[0].step')" lock
worker=$(printf '%s' "$out" | jq -r '.maps[0].stuck_worker')
t_like "(a) the stuck worker is named" "$worker" '^[0-9]+$'
t_like "(a) and in the reason" "$(printf '%s' "$out" | jq -r '.maps[0].reason')" "/dev/sd.*pid $worker"
t_check "(a) it is still in the kernel" alive "$worker"
t_diag "(a) worker $worker: $(cut -d' ' -f3 "/proc/$worker/stat" 2> /dev/null) in $(cat "/proc/$worker/wchan" 2> /dev/null)"
t_is "(a) its stdout is not ours" "$(readlink "/proc/$worker/fd/1")" /dev/null
t_check "(a) the map is there" lab_map_exists "$map"
t_check "(a) queueing untouched" lab_map_queueing "$map"
t_check_fails "(a) the map is not suspended" lab_map_suspended "$map"
# end the error recovery: the next TEST UNIT READY succeeds
echo 0 > $sdbg/opts
echo 0 > $sdbg/every_nth
_i=0
while in_recovery && [ $_i -lt 300 ]; do sleep 0.1; _i=$((_i + 1)); done
_i=0
while alive "$worker" && [ $_i -lt 300 ]; do sleep 0.1; _i=$((_i + 1)); done
t_check_fails "(a) the worker ends with the error recovery" alive "$worker"
for r in $readers; do wait "$r"; done
wait_file "$MPF_LAB_OUT/a.rc" 60 || true
for p in $paths; do echo running > "/sys/block/$p/device/state" 2> /dev/null; done
lab_run g mpath-flush --json -t 20 "$map"
t_is "then the map is removed as usual (exit 0)" "$g_rc" 0
t_check_fails "the map is gone" lab_map_exists "$map"
t_done
