#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# H1: --wait-busy. A map unmounted 1 s after `mpath-flush --wait-busy -t 10` started is
# removed (exit 0) and the result says it waited. A map that stays mounted ends busy at the
# deadline, naming the mount, left as found; while that wait runs, its map lock is free
# between attempts (flock -w 1) and another mpath-flush of it answers busy at once instead
# of waiting for a lock.
# mpf-lab: mode=fast timeout=240
. /usr/lib/mpf-lab/lib.sh

lab_setup 2 multipathd
set -- $(lab_maps)
a=$1 b=$2
# scsi_debug LUNs share one store: one mkfs shows on both; mount read-only
mkfs.ext4 -q -F "/dev/mapper/$a"
lab_settle
mkdir -p /mnt/a /mnt/b
t_check "$a and $b are mounted" sh -c "mount -o ro,noload /dev/mapper/$a /mnt/a && mount -o ro,noload /dev/mapper/$b /mnt/b"

# --- unmounted 1 s after the start: removed, and it says it waited
json=$(lab_json_path wait-a)
s=$(lab_ms)
mpath-flush --json --wait-busy -t 10 "$a" > "$json" 2> "$MPF_LAB_OUT/wait-a.err" &
pid=$!
sleep 1
t_check "$a is still there 1 s into the wait" lab_map_exists "$a"
umount /mnt/a
u=$(lab_ms)
wait $pid
rc=$?
e=$(lab_ms)
cat "$MPF_LAB_OUT/wait-a.err"
cat "$json"
t_is "unmounted after 1 s: exit 0" "$rc" 0
t_is "unmounted after 1 s: result removed" "$(jq -r '.maps[0].result' "$json")" removed
waited=$(jq -r '.maps[0].waited_ms' "$json")
attempts=$(jq -r '.maps[0].attempts' "$json")
t_check "the result says it waited (waited_ms $waited >= 500)" test "$waited" -ge 500
t_check "more than one attempt ($attempts)" test "$attempts" -ge 2
t_check_fails "$a is gone" lab_map_exists "$a"
t_diag "$a: unmounted $((u - s)) ms after the start, removed $((e - u)) ms after the unmount; waited_ms $waited, attempts $attempts"

# --- stays mounted: busy at the deadline, naming the mount; its lock is free meanwhile
uuid=$(dmsetup info -c --noheadings -o uuid "$b")
json=$(lab_json_path wait-b)
s=$(lab_ms)
mpath-flush --json --wait-busy -t 8 "$b" > "$json" 2> "$MPF_LAB_OUT/wait-b.err" &
pid=$!
sleep 2
lock=/run/mpath-flush/lock/$uuid
t_check "the lock file exists (the first attempt took it)" test -e "$lock"
# each attempt holds the lock for its scan only: it is free between attempts (at most 500 ms apart)
t_check "during the wait the map lock can be taken within 1 s (flock -w 1)" flock -w 1 "$lock" true
lab_run other mpath-flush --json -t 4 "$b"
t_is "during the wait, another mpath-flush of $b: exit 4 (busy), not 5 (lock timeout)" "$other_rc" 4
t_check "it answered within 3 s ($other_ms ms)" test "$other_ms" -lt 3000
t_is "  ... naming the mount" "$(printf '%s' "$other_out" | jq -r '.maps[0].blockers.mounts[0].target')" /mnt/b
wait $pid
rc=$?
e=$(lab_ms)
cat "$MPF_LAB_OUT/wait-b.err"
cat "$json"
t_is "stays mounted: exit 4 (busy)" "$rc" 4
t_is "stays mounted: result busy at in-use" "$(jq -r '.maps[0].result + " at " + .maps[0].step' "$json")" "busy at in-use"
t_is "stays mounted: the mount is named" "$(jq -r '.maps[0].blockers.mounts[0].target' "$json")" /mnt/b
t_like "stays mounted: the reason names it" "$(jq -r '.maps[0].reason' "$json")" "mounted on /mnt/b"
waited=$(jq -r '.maps[0].waited_ms' "$json")
t_check "it waited until near the deadline (waited_ms $waited >= 5000, run $((e - s)) ms)" test "$waited" -ge 5000
t_check "it ended by the deadline (run $((e - s)) ms <= 9000)" test $((e - s)) -le 9000
t_check "$b is there" lab_map_exists "$b"
t_check_fails "$b is not suspended" lab_map_suspended "$b"
t_check "$b queues as before" lab_map_queueing "$b"
t_check "the file system still reads" ls /mnt/b
umount /mnt/b
t_done
