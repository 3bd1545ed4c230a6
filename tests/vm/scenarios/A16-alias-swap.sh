#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A16: two maps' aliases are swapped while mpath-flush is in the middle of flushing the first
# (as multipathd does on a reconfigure after its bindings changed): from then on, the name the
# helper was given belongs to the other LUN's map. The helper holds the map lock, and its flush
# step is waiting for the device's cache flush (every SCSI command takes 2 s, scsi_debug delay)
# when the swap comes. It must go on with the map it resolved: find it, remove it by its UUID;
# the other LUN's map, which carries the old name now, keeps its queueing and stays. (A helper
# that looks the map up or removes it by name would remove the other map here.) No multipathd:
# it would rename them back, and it sets no alias here.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 2
set -- $(lab_maps)
a=$1 b=$2
ua=$(dmsetup info -c --noheadings -o uuid "$a")
ub=$(dmsetup info -c --noheadings -o uuid "$b")
# without multipathd, multipath creates the maps with queueing off: on again, for both
for m in "$a" "$b"; do dmsetup message "$m" 0 queue_if_no_path; done
both_queue() { lab_map_queueing "$a" && lab_map_queueing "$b"; }
t_check "both maps queue" both_queue
t_is "the paths have a write-back cache" "$(cat "/sys/block/$(lab_map_paths "$a" | head -n 1)/queue/write_cache")" "write back"
t_check "a writer writes 1 MiB to $a and closes it" dd if=/dev/urandom of="/dev/mapper/$a" bs=64k count=16 status=none
lab_settle
t_check "every SCSI command now takes 2 s" sh -c 'echo 500 > /sys/bus/pseudo/drivers/scsi_debug/delay'

out=$(lab_json_path swap)
log=$MPF_LAB_OUT/swap.log
mpath-flush --json -v -t 60 "$a" > "$out" 2> "$log" &
f=$!
i=0
until grep -q "^mpath-flush: $a: flush: starting" "$log" || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done
t_check "mpath-flush is in its flush step (the cache flush waits 2 s)" grep -q "^mpath-flush: $a: flush: starting" "$log"
# The swap. udev holds its events meanwhile: its probes of the renamed maps would open them (an
# opener the helper waits for) and keep slow commands queued, so that scsi_debug would refuse to
# drop the delay.
udevadm control --stop-exec-queue
dmsetup rename --noudevsync "$a" mpf-swap && dmsetup rename --noudevsync "$b" "$a" &&
        dmsetup rename --noudevsync mpf-swap "$b"
t_is "$a is now the other LUN's map" "$(dmsetup info -c --noheadings -o uuid "$a")" "$ub"
t_check_fails "and mpath-flush has not removed anything yet" grep -q ": remove: starting" "$log"
# scsi_debug refuses a new delay while commands are queued: retry until it takes it
i=0
until (echo 0 > /sys/bus/pseudo/drivers/scsi_debug/delay) 2> /dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
t_is "commands are fast again" "$(cat /sys/bus/pseudo/drivers/scsi_debug/delay)" 0
udevadm control --start-exec-queue
wait "$f"
rc=$?
t_diag "mpath-flush $a: exit $rc; $(jq -r '.maps[0] | "\(.result)@\(.step): \(.reason)"' "$out")"
grep -v ': udev' "$log" | tail -n 25
t_is "exit 0" "$rc" 0
t_is "result removed" "$(jq -r '.maps[0].result' "$out")" removed
t_is "reported under the name it was given" "$(jq -r '.maps[0].map' "$out")" "$a"
t_is "the map it was given (UUID $ua, called $b since the swap) is gone" \
        "$(dmsetup info -c --noheadings -o name -u "$ua" 2> /dev/null)" ""
t_is "the other LUN's map (UUID $ub) is still there, called $a" \
        "$(dmsetup info -c --noheadings -o name -u "$ub" 2> /dev/null)" "$a"
t_check "the other LUN's map still queues" sh -c "dmsetup table -u '$ub' | grep -q queue_if_no_path"
t_done
