#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E8: a pool worker killed in the middle of its map (the OOM killer, a `pkill` by name, an
# orchestrator that kills what it thinks is stuck). `mpath-flush --all -vv --jobs 2` over 4
# queueing maps with two kpartx partition maps each, multipathd running; a udev rule holds
# every partition map's remove event until the kill (3 s at most), so a worker waits in the
# partitions step. The worker that logs the first removal of a second partition map is sent
# SIGKILL (its pid is in the -vv stamp). Within 3 s (5 s here: emulation, other workers busy)
# its map is back as it was found (queue_if_no_path in the kernel table, queueing on
# in multipathd, both partition maps active with their /dev/mapper links) or gone; the run
# carries on with the other maps (removed), reports the killed worker's map as failed and why,
# exits 1 (failed), and leaves no worker, guardian or undo record behind. The last map's lock is
# held by another tool for 15 s, so the run lasts that long: the map must be back while it runs.
# mpf-lab: mode=fast timeout=300
. /usr/lib/mpf-lab/lib.sh

lab_udev_light
lab_setup 4 multipathd
set -- $(lab_maps)
# scsi_debug LUNs share one store: the label written through one map shows on all four
printf 'label: dos\n,16M,L\n,16M,L\n' | sfdisk -q --wipe never "/dev/mapper/$1"
lab_settle
for m in "$@"; do [ -e "/dev/mapper/$m-part2" ] || kpartx -a -p -part "/dev/mapper/$m"; done
lab_settle
for m in "$@"; do
        t_check "$m queues and has two partition maps" sh -c \
                "dmsetup table $m | grep -q queue_if_no_path && dmsetup info $m-part1 && dmsetup info $m-part2" \
                > /dev/null
done

mpathd_queueing() { multipathd show maps format "%n %Q" 2> /dev/null | awk -v m="$1" '$1 == m { print $2 }'; }
active() { dmsetup info "$1" 2> /dev/null | grep -q '^State: *ACTIVE'; }
# $1 is gone, or as it was found (multipathd's queueing as $2)
as_found() {
        lab_map_exists "$1" || return 0
        lab_map_queueing "$1" || return 1
        [ "$(mpathd_queueing "$1")" = "$2" ] || return 1
        for p in "$1" "$1-part1" "$1-part2"; do active "$p" || return 1; done
        [ -b "/dev/mapper/$1-part1" ] && [ -b "/dev/mapper/$1-part2" ]
}
q0=$(mpathd_queueing "$1")
t_diag "multipathd shows queueing as '$q0'"

mkdir -p /run/udev/rules.d
# partition maps' remove events are held while /run/e8-hold exists (3 s at most); it goes at the
# kill, so that udev is not slower than usual while the guardian puts the map back
touch /run/e8-hold
echo 'ACTION=="remove", SUBSYSTEM=="block", ENV{DM_UUID}=="part*-mpath-*", RUN+="/usr/bin/timeout 3 /bin/sh -c '"'"'while [ -e /run/e8-hold ]; do sleep 0.05; done'"'"'"' \
        > /run/udev/rules.d/00-e8-slow-remove.rules
udevadm control --reload

# the last map's lock is held by another tool for 15 s: the run sets that map aside and cannot end
# before, so a put-back that waits for the run's end (not the worker's) is seen as late
mkdir -p /run/mpath-flush/lock
chmod 700 /run/mpath-flush/lock
flock "/run/mpath-flush/lock/$(dmsetup info -c --noheadings -o uuid "$4")" sleep 15 &
holder=$!

fifo=$MPF_LAB_OUT/log.fifo
mkfifo "$fifo"
out=$(lab_json_path all)
mpath-flush --all --json -vv --jobs 2 -t 60 > "$out" 2> "$fifo" &
pid=$!
victim='' wpid='' t_kill=0
# shell builtins only: a reader that forks for each line falls seconds behind the -vv log
while IFS= read -r line; do
        echo "  $line"
        [ -z "$victim" ] || continue
        # mpath-flush: [MS.US PID] MAP: partitions: removed partition map MAP-part2
        case $line in "mpath-flush: ["*"] "*": partitions: removed partition map "*-part2) ;; *) continue ;; esac
        w=${line#*\[}
        w=${w%%\]*}
        wpid=${w#* }
        victim=${line#*\] }
        victim=${victim%%: *}
        kill -KILL "$wpid" && t_kill=$(lab_ms)
        rm -f /run/e8-hold
        # watched from now, while the run goes on
        (
                j=0
                until as_found "$victim" "$q0" || [ $j -ge 100 ]; do sleep 0.1; j=$((j + 1)); done
                as_found "$victim" "$q0" && echo $(($(lab_ms) - t_kill)) > "$MPF_LAB_OUT/putback.ms"
        ) &
        watcher=$!
        echo "  ### SIGKILL to worker $wpid working on $victim"
done < "$fifo"
wait "$pid"
rc=$?
t_end=$(lab_ms)
rm -f /run/udev/rules.d/00-e8-slow-remove.rules /run/e8-hold
udevadm control --reload
t_check "a worker logged a partition map's removal and was killed while it ran ($victim)" test "$t_kill" -gt 0
[ "$t_kill" -gt 0 ] || t_done

wait "$watcher"
took=$(cat "$MPF_LAB_OUT/putback.ms" 2> /dev/null || echo never)
t_diag "$victim as found $took ms after the kill; the run ended $((t_end - t_kill)) ms after it"
# the contract's 3 s, plus emulation with other workers busy beside the guardian (as E6's bound)
t_check "$victim is back as found within 5 s of the kill ($took ms)" test "$took" -le 5000
t_check "... while the run still went on: put back at the worker's death, not the run's end" \
        test "$took" -lt $((t_end - t_kill))
t_diag "$victim: table: $(dmsetup table "$victim" 2>&1 | head -n 1); multipathd: $(mpathd_queueing "$victim"); partition maps: $(dmsetup ls | grep -c -- "$victim-part")"
t_diag "results: $(jq -r '[.maps[] | "\(.map)=\(.result)@\(.step)"] | join(" ")' "$out")"
t_is "the run exits 1 (a map failed)" "$rc" 1
t_is "$victim is reported failed" "$(jq -r --arg m "$victim" '.maps[] | select(.map == $m) | .result' "$out")" failed
t_like "... because its worker was killed, and that the guardian puts it back" \
        "$(jq -r --arg m "$victim" '.maps[] | select(.map == $m) | .reason' "$out")" \
        'worker process was killed by signal 9.*guardian puts the map back'
wait "$holder"
t_is "the three other maps were removed (the held one once its lock was free)" \
        "$(jq -r --arg m "$victim" '[.maps[] | select(.map != $m and .result == "removed")] | length' "$out")" 3
t_is "only $victim's maps are left" "$(dmsetup ls | awk '{ print $1 }' | grep -v "^$victim" | grep -c mpath)" 0
i=0
while [ -n "$(pgrep -x mpath-flush-w)$(pgrep -x mpath-flush-gd)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
t_is "no worker is left" "$(pgrep -x mpath-flush-w | wc -l)" 0
t_is "no guardian is left" "$(pgrep -x mpath-flush-gd | wc -l)" 0
t_is "no undo record is left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""
t_done
