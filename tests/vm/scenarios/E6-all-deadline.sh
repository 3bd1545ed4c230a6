#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E6: --all -t 1 with 16 queueing maps that each have two kpartx partition maps.
# No map is touched after the deadline: no step starts later than the deadline
# (the -v log, time-stamped by its reader, with 0.2 s for the pipe), maps whose
# turn comes after it are reported "timeout" at "resolve", and every map that is
# not reported removed is exactly as found (queue_if_no_path, both partition
# maps, nothing suspended). The run answers within the deadline plus the 2 s
# that putting a map back may take. --dry-run with the same deadline changes
# nothing. Then a run killed (SIGKILL) while its worker processes flush: they die
# with it, and every map is gone or exactly as found.
# First, the same -t 1 with the pool (default jobs) while udev takes 2 s over each
# partition map's removal: the maps of the first jobs wait for udev until the
# deadline, and the others' turn comes after it. No map starts after the deadline
# (no step of it in the log; "timeout" at "resolve"; untouched), the maps in flight
# are put back as found, and the answer comes within the deadline, the 2 s of
# putting back and slack.
# mpf-lab: mode=fast timeout=600
. /usr/lib/mpf-lab/lib.sh

lab_udev_light
lab_setup 16 multipathd
# scsi_debug LUNs share one store: one label shows on every LUN; kpartx for each map
printf 'label: dos\n,16M,L\n,16M,L\n' | sfdisk -q "/dev/mapper/$map"
echo 3 > /proc/sys/vm/drop_caches
for m in $(lab_maps); do
        [ -e "/dev/mapper/$m-part2" ] || kpartx -a -p -part "/dev/mapper/$m" &
done
wait
lab_settle
parts=0
for m in $(lab_maps); do lab_map_exists "$m-part1" && lab_map_exists "$m-part2" && parts=$((parts + 1)); done
t_is "16 maps with two partition maps each" "$parts" 16

# what each map looks like: its table, its partition maps' tables, its state
state() {
        for m in $(lab_maps); do
                printf '%s|%s|%s|%s|%s\n' "$m" "$(dmsetup table "$m")" "$(dmsetup table "$m-part1" 2>&1)" \
                        "$(dmsetup table "$m-part2" 2>&1)" \
                        "$(dmsetup info "$m" "$m-part1" "$m-part2" 2>&1 | grep -E '^(Name|State)' | tr -s ' \n' ' ')"
        done
}
before=$(state)
t_is "every map queues" "$(printf '%s\n' "$before" | grep -c queue_if_no_path)" 16

lab_run n mpath-flush --all --dry-run --json -t 1
t_is "dry run: 16 maps reported" "$(printf '%s' "$n_out" | jq '.maps | length')" 16
t_is "dry run: nothing changed" "$(state)" "$before"

# steps that start, or partition maps removed, later than LIMIT (ms) in a stamped -v log
# a step, or a partition map's remove, that began after the deadline (its "removed" line may come
# later: a remove issued before the deadline can take half a second on a loaded host)
late_steps() {
        awk -v lim="$2" '$1 > lim && ($0 ~ /: (resolve|in-use|queueing|partitions|claim|flush|sole-opener|remove): starting/ || $0 ~ /removing partition map/)' "$1"
}

# The pool with udev slow on partition maps: a rule holds each partition map's remove event
# (and so the udev cookie the partitions step waits for) for 2 s, as udev flooded by a storm of
# events would. The maps of the first jobs wait for udev until the deadline; the others' turn
# comes after it.
mkdir -p /run/udev/rules.d
echo 'ACTION=="remove", SUBSYSTEM=="block", ENV{DM_UUID}=="part*-mpath-*", RUN+="/bin/sleep 2"' \
        > /run/udev/rules.d/00-e6-slow-remove.rules
udevadm control --reload
t0=$(lab_ms)
{ mpath-flush --all --json -v -t 1 2>&1 > "$MPF_LAB_OUT/pool.json"; echo $? > "$MPF_LAB_OUT/pool.rc"; } |
        stamp-lines > "$MPF_LAB_OUT/pool.log"
took=$(($(lab_ms) - t0))
rm -f /run/udev/rules.d/00-e6-slow-remove.rules
udevadm control --reload
out=$(cat "$MPF_LAB_OUT/pool.json")
rc=$(cat "$MPF_LAB_OUT/pool.rc")
t_diag "pool: mpath-flush --all -t 1 took $took ms, exit $rc"
t_diag "pool: results: $(printf '%s' "$out" | jq -r '[.maps[] | "\(.map)=\(.result)@\(.step)"] | join(" ")')"
t_check "pool: it answered within the deadline, the 2 s of putting back and 1.5 s of slack ($took ms)" \
        test "$took" -lt 4500
t_is "pool: exit 5 (timeout)" "$rc" 5
t_is "pool: 16 maps reported" "$(printf '%s' "$out" | jq '.maps | length')" 16
t_like "pool: every map not removed timed out" \
        "$(printf '%s' "$out" | jq -r '[.maps[] | select(.result != "removed") | .result] | unique | join(" ")')" '^(timeout)?$'
notstarted=$(printf '%s' "$out" | jq -r '.maps[] | select(.result == "timeout" and .step == "resolve") | .map')
started=$(printf '%s' "$out" | jq -r '.maps[] | select(.step != "resolve") | .map')
t_check "pool: several maps started at once ($(echo $started | wc -w): $(echo $started))" \
        test "$(echo $started | wc -w)" -ge 2
t_check "pool: the others' turn came after the deadline ($(echo $notstarted | wc -w) not started)" \
        test "$(echo $notstarted | wc -w)" -gt 0
t_is "pool: no step started after the deadline" "$(late_steps "$MPF_LAB_OUT/pool.log" $((t0 + 1200)))" ""
touched=
for m in $notstarted; do
        grep -qE "(^|[ \"])$m: [a-z-]+: starting" "$MPF_LAB_OUT/pool.log" && touched="$touched $m"
done
t_is "pool: no step of a map reported not started ran" "$touched" ""
grep -E ': (starting|removed partition map)' "$MPF_LAB_OUT/pool.log" | sed "s/^/  /" | tail -n 12
lab_settle
removed=$(printf '%s' "$out" | jq -r '.maps[] | select(.result == "removed") | .map' | sort)
expect=$(printf '%s\n' "$before" | while IFS='|' read -r m rest; do
        printf '%s\n' "$removed" | grep -qx "$m" || printf '%s|%s\n' "$m" "$rest"; done)
t_is "pool: every map not removed is as found (tables, partition maps, not suspended)" "$(state)" "$expect"
t_is "pool: no undo record is left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""
before=$(state)
n_maps=$(lab_maps | wc -l)

t0=$(lab_ms)
# stderr (the -v log) through a reader that stamps each line with the time it arrived.
# --jobs 1: with the default 8 jobs on a quiet host all 16 maps started within the second
# (and 12 of 16 with --jobs 2), so the deadline stopped none before its turn; one at a
# time, about 6 go. The pool's "no map starts after the deadline" is the run above, with
# udev slowed down; its put-back of maps in flight is in the kill below.
{ mpath-flush --all --jobs 1 --json -v -t 1 2>&1 > "$MPF_LAB_OUT/all.json"; echo $? > "$MPF_LAB_OUT/all.rc"; } |
        stamp-lines > "$MPF_LAB_OUT/all.log"
took=$(($(lab_ms) - t0))
out=$(cat "$MPF_LAB_OUT/all.json")
rc=$(cat "$MPF_LAB_OUT/all.rc")
t_diag "mpath-flush --all -t 1 took $took ms, exit $rc"
# Each map in flight at the deadline is put back within 2 s of the moment its step stopped; with
# the pool up to 8 of them do so at once in this emulated guest (their udev waits, bounded by the
# deadline, end a little late when udev is flooded), and 8 workers exit before the answer.
t_check "it answered within the deadline, the 2 s of putting back and 1.5 s of slack ($took ms)" \
        test "$took" -lt 4500
t_is "exit 5 (timeout)" "$rc" 5
t_is "every map reported" "$(printf '%s' "$out" | jq '.maps | length')" "$n_maps"
removed=$(printf '%s' "$out" | jq -r '.maps[] | select(.result == "removed") | .name' | sort)
t_diag "removed before the deadline: $(printf '%s' "$removed" | tr '\n' ' ')"
t_diag "results: $(printf '%s' "$out" | jq -r '[.maps[] | "\(.map)=\(.result)@\(.step)"] | join(" ")')"
t_like "the maps not removed timed out" \
        "$(printf '%s' "$out" | jq -r '[.maps[] | select(.result != "removed") | .result] | unique | join(" ")')" '^(timeout)?$'
notstarted=$(printf '%s' "$out" | jq '[.maps[] | select(.result == "timeout" and .step == "resolve")] | length')
t_check "some maps' turn came after the deadline ($notstarted not started)" test "$notstarted" -gt 0

# A step that starts, or a partition map removed, later than the deadline (as the caller saw it,
# with 0.2 s for the helper's start and the pipe)
t_is "no step started after the deadline" "$(late_steps "$MPF_LAB_OUT/all.log" $((t0 + 1200)))" ""
grep -E ': (starting|removed partition map)' "$MPF_LAB_OUT/all.log" | sed "s/^/  /" | tail -n 12

# every map not removed is exactly as found
lab_settle
expect=$(printf '%s\n' "$before" | while IFS='|' read -r m rest; do
        printf '%s\n' "$removed" | grep -qx "$m" || printf '%s|%s\n' "$m" "$rest"; done)
t_is "every map not removed is as found (tables, partition maps, not suspended)" "$(state)" "$expect"
t_is "no undo record is left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""

# SIGKILL to a run while its worker processes flush (the second "partitions: starting" logged):
# the workers die with it (the log reader sees EOF), and within the contract's about 3 s (checked
# with this emulated guest's margin, below) every map is gone or exactly as found (the guardian put
# back the maps in flight).
before=$(state)
fifo=$MPF_LAB_OUT/kill.fifo
mkfifo "$fifo"
mpath-flush --all -v -t 30 2> "$fifo" > /dev/null &
pid=$!
killed=0 parts=0 t_kill=0
while IFS= read -r line; do
        printf '%s\n' "$line" >> "$MPF_LAB_OUT/kill.log"
        case $line in *": partitions: starting"*) parts=$((parts + 1)) ;; esac
        if [ $killed -eq 0 ] && [ $parts -ge 2 ]; then
                kill -KILL "$pid"; killed=1; t_kill=$(lab_ms)
        fi
done < "$fifo"
t_eof=$(lab_ms)
wait "$pid"
t_is "killed by SIGKILL in the middle of the pool" "$killed:$?" 1:137
# the shell reads what was still in the pipe a byte at a time first (0.6-1.3 s on this emulated
# guest, 2026-12-01); a guardian holding the pipe would make it last until its exit (4 s or more)
t_check "the log ended within 2.5 s ($((t_eof - t_kill)) ms)" test $((t_eof - t_kill)) -lt 2500
# the workers log through the run's pipe, not to our reader: see them go themselves
i=0
while [ -n "$(pgrep -x mpath-flush-w)" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
t_gone=$(lab_ms)
t_is "the workers (and their write-back workers, same name) died with it, within 5 s ($((t_gone - t_kill)) ms)" "$(pgrep -x mpath-flush-w)" ""
# each map left is exactly as it was before the run (its line of state)
as_found() {
        state | while IFS= read -r l; do
                printf '%s\n' "$before" | grep -qxF -- "$l" || return 1
        done
}
# the guardian exits once it has put back every map it was handed
i=0
while [ -n "$(pgrep -x mpath-flush-gd)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
took=$(($(lab_ms) - t_kill)) gd=$(($(lab_ms) - t_gone))
# The contract's "about 3 s" holds the killed run's processes' going too, which alone took
# 2.6-4.0 s in this emulated guest on 2026-12-01 (the code of 99ef9fe and of this commit alike:
# 4.0-6.0 s in all on a quiet host, 5.9 s beside one other guest): the whole is checked with
# 2.5 times the contract's 3 s. What the put-back itself takes once they are gone (1.3-2.2 s
# seen) is checked on its own: one map after another took 5.9 s in all with 8 maps in flight.
t_check "the guardian put the maps back and exited within 7.5 s of the kill ($took ms)" test "$took" -lt 7500
t_check "... within 3.5 s of the run's processes being gone, putting the maps back at once ($gd ms)" test "$gd" -lt 3500
t_diag "$(lab_maps | wc -l) maps left after the kill"
t_check "every map is gone or exactly as found" as_found
t_is "no worker is left" "$(pgrep -x mpath-flush-w | wc -l)" 0
t_is "no undo record is left after the kill" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""
t_done
