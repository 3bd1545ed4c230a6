#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E2: left as found even when killed. A queueing map with two kpartx partition
# maps; mpath-flush -v is sent SIGKILL the moment it logs each of ten points
# spread over the flush (from "locked" to "remove: starting"). After each kill,
# within 3 s, the map is gone or back as it was found: queue_if_no_path in the
# kernel table, queueing on in multipathd, both partition maps with their
# /dev/mapper links, nothing suspended; the guardian is gone, and it never held
# the caller's stderr (the reader sees EOF when the helper dies). Once more with
# SIGPIPE (the reader of its log goes away after the first partition map is
# removed): the flush carries on and removes the map. The last step each killed
# helper logged is reported. Then the whole process group killed (the guardian
# too) once queueing is off, and the next flusher meeting the map suspended: the
# kernel refuses the record's queue_if_no_path; that flusher's own record keeps
# the mark, and the one after it, the map resumed, puts the map back as found.
# mpf-lab: mode=fast timeout=480 cpu=timing
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "two partition maps exist" lab_partition "$map" 2

mpathd_queueing() { multipathd show maps format "%n %Q" 2> /dev/null | awk -v m="$map" '$1 == m { print $2 }'; }
active() { dmsetup info "$1" 2> /dev/null | grep -q '^State: *ACTIVE'; }
# the map is gone, or as it was found
as_found() {
        lab_map_exists "$map" || return 0
        lab_map_queueing "$map" || return 1
        [ "$(mpathd_queueing)" = "$q0" ] || return 1
        for p in "$map" "$map-part1" "$map-part2"; do active "$p" || return 1; done
        [ -b "/dev/mapper/$map-part1" ] && [ -b "/dev/mapper/$map-part2" ]
}
# a fresh queueing map with both partition maps, if the last round removed it
ensure_map() {
        lab_map_exists "$map" || lab_maps_create 1 || return 1
        _i=0
        while ! { [ -b "/dev/mapper/$map-part1" ] && [ -b "/dev/mapper/$map-part2" ]; } && [ $_i -lt 100 ]; do
                sleep 0.1; _i=$((_i + 1))
        done
        [ -b "/dev/mapper/$map-part1" ] || kpartx -a -p -part "/dev/mapper/$map"
        lab_settle
        as_found && lab_map_exists "$map"
}
guardians() { pgrep -x mpath-flush-gd | wc -l; }

q0=$(mpathd_queueing)
t_diag "multipathd shows queueing as '$q0'"
t_check "the map queues (queue_if_no_path)" lab_map_queueing "$map"

fifo=$MPF_LAB_OUT/log.fifo
mkfifo "$fifo"
n=0
kill_at() {
        n=$((n + 1))
        if ! ensure_map; then
                t_fail "kill $n ($1): the map could not be set up again"
                return
        fi
        mpath-flush -v -t 20 "$map" 2> "$fifo" &
        pid=$!
        killed=0 last='' t_kill=0
        # read to EOF: the guardian must not hold the helper's stderr
        while IFS= read -r line; do
                echo "  [$n] $line"
                case $line in *": $map: "*) last=$line ;; esac
                if [ $killed -eq 0 ]; then
                        case $line in *"$1"*)
                                kill -KILL "$pid"; t_kill=$(lab_ms); killed=1 ;;
                        esac
                fi
        done < "$fifo"
        t_eof=$(lab_ms)
        wait "$pid"; rc=$?
        step=$(printf '%s\n' "$last" | sed -n "s/^mpath-flush: $map: \([a-z-]*\): .*/\1/p")
        if [ $killed -eq 0 ]; then
                t_fail "kill $n: '$1' was never logged (exit $rc)"
                return
        fi
        _i=0
        until as_found || [ $_i -ge 30 ]; do sleep 0.1; _i=$((_i + 1)); done
        took=$(($(lab_ms) - t_kill))
        if lab_map_exists "$map"; then state="as found"; else state=gone; fi
        if as_found && [ $took -le 3500 ]; then
                t_ok "kill $n on '$1' (last step logged: ${step:-none}): $state within 3 s ($took ms)"
        else
                t_fail "kill $n on '$1' (last step logged: ${step:-none}): not as found after $took ms" \
                        "table: $(dmsetup table "$map" 2>&1 | head -1); multipathd: $(mpathd_queueing); $(dmsetup ls | tr '\n' ' ')"
        fi
        t_check "kill $n: the caller saw EOF on stderr at once ($((t_eof - t_kill)) ms)" test $((t_eof - t_kill)) -lt 1000
        _i=0
        while [ "$(guardians)" -gt 0 ] && [ $_i -lt 30 ]; do sleep 0.1; _i=$((_i + 1)); done
        t_is "kill $n: no guardian left" "$(guardians)" 0
        t_is "kill $n: no undo record left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""
}

kill_at "lock: map and path devices locked"
kill_at "in-use: starting"
kill_at "queueing: starting"
kill_at "partitions: starting"
kill_at "removed partition map $map-part1"
kill_at "removed partition map $map-part2"
kill_at "claim: starting"
kill_at "flush: starting"
kill_at "sole-opener: starting"
kill_at "remove: starting"

# The whole process group SIGKILLed (a unit's timeout: the helper, its guardian and its workers at
# once) once queueing is off, before the partitions step: nobody puts the map back, the record is
# left for the next flusher. That one meets the map suspended (an administrator's dmsetup suspend),
# and a suspended multipath target refuses every message (EBUSY): the record's multipathd mark is
# put back, its kernel mark is not. It goes on: removes the partition maps (the record it writes
# then replaces the one left behind, and must still say the kernel's queueing is off), and its
# flush stalls on the suspended map until its deadline. Once the map is resumed, the next
# flusher of the map puts back all that is left.
t_check "cgroup kill: the map is set up again" ensure_map
# a cgroup of its own, killed as a unit's is: cgroup.kill, every process in it at once (the
# guardian calls setsid(), so a process group kill would leave it)
cg=/sys/fs/cgroup
[ -e "$cg/cgroup.procs" ] || mount -t cgroup2 none "$cg"
mkdir "$cg/mpf-e2"
sh -c 'echo $$ > "$1/cgroup.procs" && exec mpath-flush -v -t 20 "$2"' _ "$cg/mpf-e2" "$map" 2> "$fifo" &
pid=$!
killed=0
while IFS= read -r line; do
        echo "  [cgroup] $line"
        if [ $killed -eq 0 ]; then
                case $line in *"$map: partitions: starting"*) echo 1 > "$cg/mpf-e2/cgroup.kill"; killed=1 ;; esac
        fi
done < "$fifo"
wait "$pid"; rc=$?
t_is "cgroup kill: killed at the partitions step" "$killed/$rc" 1/137
_i=0
while grep -q '^populated 1' "$cg/mpf-e2/cgroup.events" && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
rmdir "$cg/mpf-e2"
# the kill can land just after the first partition map's remove began: made again as a udev
# change event's kpartx would, it is there when the record is put back (else udev's blkid on a
# partition map made again over the suspended map would hold the next flusher's udev wait)
if ! lab_map_exists "$map-part1" || ! lab_map_exists "$map-part2"; then
        t_diag "cgroup kill: a partition map was removed before the kill; kpartx makes it again"
        kpartx -a -p -part "/dev/mapper/$map"
        lab_settle
fi
t_is "cgroup kill: no guardian left" "$(guardians)" 0
record() { cat /run/mpath-flush/undo/* 2> /dev/null; }
t_is "cgroup kill: the record left says queueing is off in the kernel and in multipathd" \
        "$(record | grep '^queueing-off' | tr '\n' ' ')" "queueing-off kernel queueing-off multipathd "
t_check_fails "cgroup kill: queueing is off in the kernel" lab_map_queueing "$map"
dmsetup suspend --noflush --nolockfs "$map"
t_check "cgroup kill: the map is suspended" lab_map_suspended "$map"
lab_run r timeout -s KILL 40 mpath-flush --json -v -t 4 "$map"
t_diag "cgroup kill, suspended: mpath-flush -t 4 took $r_ms ms, exit $r_rc"
t_like "cgroup kill, suspended: the kernel refused the record's queue_if_no_path" "$r_err" \
        "$map: queueing: Failed to restore queue_if_no_path: Device or resource busy"
t_check "cgroup kill, suspended: the map stays" lab_map_exists "$map"
t_like "cgroup kill, suspended: its partition maps were removed" "$r_err" "removing partition map $map-part1"
t_is "cgroup kill, suspended: the record still says the kernel's queueing is off" \
        "$(record | grep -c '^queueing-off kernel')" 1
dmsetup resume "$map"
_i=0
while pgrep -x mpath-flush > /dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
t_check_fails "cgroup kill: resumed, the stalled write-back worker finished" pgrep -x mpath-flush
# multipathd may switch queueing on by itself meanwhile (the resume's change uevent makes it
# update the map): the record, and the next flusher's use of it, are what is checked
t_diag "cgroup kill: resumed: table $(dmsetup table "$map" | cut -d' ' -f3-5); record: $(record | tr '\n' ' ')"
sleep 60 < "/dev/mapper/$map" &
holder=$!
_i=0
until [ "$(lab_map_opencount "$map")" -ge 3 ] || [ $_i -ge 50 ]; do sleep 0.1; _i=$((_i + 1)); done
lab_run r timeout -s KILL 40 mpath-flush --json -t 5 "$map"
kill "$holder"
t_is "cgroup kill: next flusher: busy" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" busy
t_like "cgroup kill: next flusher: it put the map back from the record" "$r_err" \
        "$map: lock: an undo record was left .*: putting the map back as it says"
lab_settle
t_check "cgroup kill: next flusher: the map is as found (table: $(dmsetup table "$map" | cut -d' ' -f3-5); multipathd: $(mpathd_queueing); $(dmsetup ls | tr '\n' ' '))" as_found
t_is "cgroup kill: next flusher: no undo record is left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""

# SIGPIPE: the reader of its log goes away after the first partition map is removed. The helper
# is stopped while the reader closes, so that its next line meets a pipe without a reader.
t_check "the map is set up again" ensure_map
mpath-flush -v -t 20 "$map" 2> "$fifo" &
pid=$!
exec 3< "$fifo"
while IFS= read -r line <&3; do
        echo "  [pipe] $line"
        case $line in *"removed partition map $map-part1"*) kill -STOP "$pid"; break ;; esac
done
exec 3<&-
kill -CONT "$pid"
wait "$pid"; rc=$?
t_is "the held-back SIGPIPE did not end it: it exits with the run's status (0)" "$rc" 0
t_check "SIGPIPE did not stop the flush: the map is gone" lab_wait_gone "$map" 5
t_check_fails "its partition maps are gone" lab_map_exists "$map-part1"
t_done
