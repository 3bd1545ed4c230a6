#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A13: `mpath-flush --all` (default --jobs) over 32 maps with multipathd running: 4 mounted,
# 2 with two kpartx partition maps each, 2 pathless and queueing with a blocked reader, a
# second `mpath-flush MAP` on one plain map started as soon as --all has listed the maps, and
# another plain map whose lock another tool holds until --all has set it aside. Both are
# staged, not left to timing: for the contest over the first plain map, a third process holds
# its map lock until both instances are seen waiting for it in /proc/locks, then lets go. Every map ends as documented (mounted: busy;
# the rest removed, partition maps first; the contested map removed by one instance and absent
# for the other; the held one set aside and removed once its lock is free), the queued reads
# fail, nothing is re-created, neither instance waits for the deadline (no deadlock), --all
# exits 4 and the other 0. The maps were flushed concurrently: one map's
# remove starts while another's is in flight (the -v log, in the order it was written), which
# cannot happen one map after another (--jobs 1).
# mpf-lab: mode=fast timeout=600 cpu=heavy
. /usr/lib/mpf-lab/lib.sh

lab_udev_light
lab_setup 32 multipathd
set -- $(lab_maps)
# names in sorted order: mounted, the contested one, partitioned, pathless, the held one; the
# rest plain. The pool starts the first maps at once (8 with 2 CPUs).
m1=$1 m2=$2 m3=$3 m4=$4 x=$5 p1=$6 p2=$7 q1=$8 q2=$9 y=${10}
# scsi_debug LUNs share one store: one ext4 (superblock at 1 KiB) and one DOS label (sector 0)
# show on every LUN. The 4 maps are mounted before the label is written: a map udev probes
# after that (an event still queued on a slow host) would get kpartx's partition maps, and
# those hold it, so that it cannot be mounted. The partition maps are made for p1 and p2 only.
mkfs.ext4 -q -F "/dev/mapper/$m1"
lab_settle
i=0
for m in "$m1" "$m2" "$m3" "$m4"; do
        i=$((i + 1))
        mkdir -p "/mnt/m$i"
        mount -t ext4 -o ro,noload "/dev/mapper/$m" "/mnt/m$i" ||
                t_fail "mount $m" "holders: $(ls "/sys/block/$(lab_map_dev "$m")/holders" | tr '\n' ' ')"
done
t_is "4 maps mounted" "$(grep -c ' /mnt/m[1-4] ' /proc/mounts)" 4
printf 'label: dos\n,16M,L\n,16M,L\n' | sfdisk -q --wipe never "/dev/mapper/$p1"
lab_settle
for m in "$p1" "$p2"; do [ -e "/dev/mapper/$m-part2" ] || kpartx -a -p -part "/dev/mapper/$m"; done
lab_settle
t_check "$p1 and $p2 have two partition maps each" sh -c \
        "dmsetup info $p1-part1 && dmsetup info $p1-part2 && dmsetup info $p2-part1 && dmsetup info $p2-part2" \
        > /dev/null
t_diag "partition maps: $(dmsetup ls | awk '$1 ~ /-part[0-9]+$/ { print $1 }' | sort | tr '\n' ' ')"
for m in "$q1" "$q2"; do
        t_check "$m queues" lab_map_queueing "$m"
        for p in $(lab_map_paths "$m"); do lab_path_offline "$p"; done
done
sleep 3
aio-io read "/dev/mapper/$q1" > "$MPF_LAB_OUT/aio1.out" 2>&1 &
aio1=$!
aio-io read "/dev/mapper/$q2" > "$MPF_LAB_OUT/aio2.out" 2>&1 &
aio2=$!
sleep 2
t_check "both readers are blocked" kill -0 "$aio1" "$aio2"

# Another tool (doc/CONTRACT.md) holds y's map lock until --all has tried it and set it aside
# (its -v log: "y: finished: busy"), and x's until both instances wait for it. Each holder
# waits on a fifo; the lock is seen held before --all starts.
mkdir -p /run/mpath-flush/lock
chmod 700 /run/mpath-flush/lock
hold_lock() {  # hold_lock MAP FIFO: a holder of MAP's lock until a line is written to FIFO
        _lock=/run/mpath-flush/lock/$(dmsetup info -c --noheadings -o uuid "$1")
        rm -f "$2"
        mkfifo "$2"
        flock "$_lock" sh -c 'read _ < "$1"' sh "$2" &
        _i=0
        while flock -n "$_lock" true && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
        t_check_fails "another tool holds $1's map lock before --all starts" flock -n "$_lock" true
}
release() {  # release FIFO: let its holder go; a holder that is gone must not block us
        timeout 10 sh -c 'echo go > "$1"' sh "$1" || t_diag "no holder read $1"
}
hold_lock "$y" /run/a13-release-y
holder=$!
hold_lock "$x" /run/a13-release
xholder=$!
xlock=/run/mpath-flush/lock/$(dmsetup info -c --noheadings -o uuid "$x")
# /proc/locks names a file by device (hex major:minor, two digits at least) and inode
xid=$(printf '%02x:%02x:%s' $(stat -c '%Hd %Ld %i' "$xlock"))
xwaiters() {  # mpath-flush processes blocked in flock() on x's map lock
        awk -v id="$xid" '$2 == "->" && $3 == "FLOCK" && $7 == id { print $6 }' /proc/locks |
                while read -r pid; do cat "/proc/$pid/comm" 2> /dev/null; done | grep -cx mpath-flush
}
all=$(lab_json_path all)
one=$(lab_json_path one)
t0=$(lab_ms)
(mpath-flush --all --json -v -t 60 > "$all" 2>> "$MPF_LAB_OUT/all.log"; echo $? > "$MPF_LAB_OUT/all.rc") &
f_all=$!
(
        i=0
        until grep -q "^mpath-flush: $y: finished: busy" "$MPF_LAB_OUT/all.log" 2> /dev/null || [ $i -ge 600 ]; do
                sleep 0.1; i=$((i + 1))
        done
        release /run/a13-release-y
) &
releaser=$!
# The single flush starts once --all has listed the maps (-v logs libdevmapper's ioctls: the
# first "dm info" of a map follows the "dm names" listing), so that both have $x to flush.
i=0
until grep -q 'libdevmapper: dm info ' "$MPF_LAB_OUT/all.log" 2> /dev/null || [ $i -ge 400 ]; do
        sleep 0.05; i=$((i + 1))
done
t_diag "the single flush of $x starts $(($(lab_ms) - t0)) ms after --all"
(mpath-flush --json -t 60 "$x" > "$one" 2> "$MPF_LAB_OUT/one.err"; echo $? > "$MPF_LAB_OUT/one.rc") &
f_one=$!
# --all sets $x aside (its pool only tries locks) and waits for it after the others; the single
# flush waits at once. Both blocked on the lock at the same time is the contest.
i=0
until [ "$(xwaiters)" -ge 2 ] || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
t_is "both instances wait for $x's map lock at the same time" "$(xwaiters)" 2
t_diag "both waiting $(($(lab_ms) - t0)) ms after --all started; letting $x's lock go"
release /run/a13-release
wait "$xholder"
wait "$f_all"
wait "$f_one"
took=$(($(lab_ms) - t0))
t_diag "both instances done in $took ms; --all: exit $(cat "$MPF_LAB_OUT/all.rc"), $x alone: exit $(cat "$MPF_LAB_OUT/one.rc")"
t_diag "results: $(jq -r '[.maps[] | "\(.map)=\(.result)@\(.step)"] | join(" ")' "$all")"
cat "$MPF_LAB_OUT/one.err"

t_check "no deadlock: both done well before the 60 s deadline ($took ms)" test "$took" -lt 45000
t_is "--all exits 4 (busy)" "$(cat "$MPF_LAB_OUT/all.rc")" 4
t_is "the single flush of $x exits 0" "$(cat "$MPF_LAB_OUT/one.rc")" 0
t_is "32 maps reported, in name order" "$(jq -r '[.maps[].map] | join(" ")' "$all")" "$*"
t_is "the 4 mounted maps are busy" \
        "$(jq -r '[.maps[] | select(.result == "busy") | .map] | join(" ")' "$all")" "$m1 $m2 $m3 $m4"
t_is "no map timed out or failed" \
        "$(jq '[.maps[] | select(.result != "busy" and .result != "removed" and .result != "absent")] | length' "$all")" 0
t_is "every other map but $x removed by --all" \
        "$(jq -r --arg x "$x" '[.maps[] | select(.result == "removed" and .map != $x)] | length' "$all")" 27
t_like "$x: removed by one instance, absent for the other" \
        "$(jq -r --arg x "$x" '.maps[] | select(.map == $x) | .result' "$all")+$(jq -r '.maps[0].result' "$one")" \
        '^(removed\+absent|absent\+removed)$'
for m in "$p1" "$p2"; do
        t_is "$m: its partition maps were removed with it" \
                "$(jq -r --arg m "$m" '.maps[] | select(.map == $m) | .partitions | sort | join(" ")' "$all")" \
                "$m-part1 $m-part2"
done
for m in "$q1" "$q2"; do
        t_is "$m (pathless, queueing) removed" \
                "$(jq -r --arg m "$m" '.maps[] | select(.map == $m) | .result' "$all")" removed
done
wait "$aio1"
t_is "reader 1 exited with its read failed" "$?" 1
t_like "with EIO" "$(cat "$MPF_LAB_OUT/aio1.out")" "completed: -5"
wait "$aio2"
t_is "reader 2 exited with its read failed" "$?" 1
t_like "with EIO" "$(cat "$MPF_LAB_OUT/aio2.out")" "completed: -5"
wait "$releaser"
wait "$holder"
t_is "$y, whose lock was held, was removed" "$(jq -r --arg m "$y" '.maps[] | select(.map == $m) | .result' "$all")" removed
t_check "$y was set aside while its lock was held, and flushed after the others" \
        grep -q "^mpath-flush: $y: another flusher held its lock" "$MPF_LAB_OUT/all.log"
t_check "$x was set aside by --all while its lock was held" \
        grep -q "^mpath-flush: $x: another flusher held its lock" "$MPF_LAB_OUT/all.log"
t_diag "$x alone: $(jq -r '.maps[0] | "\(.result)@\(.step)"' "$one")"
t_is "only the mounted maps are left" "$(lab_maps | tr '\n' ' ')" "$m1 $m2 $m3 $m4 "
t_is "no partition map left" "$(dmsetup ls | grep -c -- '-part')" 0

# concurrency: some map's remove started while another map's remove was in flight
# ("MAP: remove: starting" to that map's next line of the remove step, "MAP: remove: removed" right
# after the ioctl; the release of its fds logged in between is not the end of it)
overlap=$(awk -F ': ' '
        / remove: starting$/ { for (o in busy) if (busy[o]) n++; busy[$2] = 1; next }
        $3 == "remove" { busy[$2] = 0 }
        END { print n + 0 }' "$MPF_LAB_OUT/all.log")
t_diag "removes started while another was in flight: $overlap"
t_check "maps were removed concurrently" test "$overlap" -gt 0

sleep 5
t_is "nothing re-created after 5 s" "$(lab_maps | tr '\n' ' ')" "$m1 $m2 $m3 $m4 "
for i in 1 2 3 4; do umount "/mnt/m$i"; done
t_done
