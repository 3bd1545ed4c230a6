#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E1: a loop device on a map leaves no holders/ link and no fd in /proc: only
# the open count shows it. With usable paths no I/O queues, so an open nobody
# accounts for is a user: busy at in-use, at once, the loop device named, and
# queueing never switched off (the table is sampled during the run). The dry
# run predicts the same. An external ext4 journal on the map is named too. Once
# they are gone the map is removed.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "the map queues" lab_map_queueing "$map"
modprobe loop
loop=$(losetup -f --show "/dev/mapper/$map")
t_like "a loop device on $map" "$loop" '^/dev/loop[0-9]+$'
lname=${loop#/dev/}
t_is "it leaves no holders/ link" "$(ls "/sys/block/$(lab_map_dev "$map")/holders" | wc -l)" 0
t_is "the open count shows it" "$(lab_map_opencount "$map")" 1

lab_run d mpath-flush --dry-run --json -t 8 "$map"
t_is "dry run: exit 4 (busy)" "$d_rc" 4
t_is "dry run: busy" "$(printf '%s' "$d_out" | jq -r '.maps[0].result')" busy
t_is "dry run: at in-use" "$(printf '%s' "$d_out" | jq -r '.maps[0].step')" in-use
t_is "dry run: the loop device is named" \
        "$(printf '%s' "$d_out" | jq -r '.maps[0].blockers.kernel_users[] | select(.kind == "loop") | .name')" "$lname"

# Sample the live table while the flush runs: "off" for any sample without queue_if_no_path.
samples=$MPF_LAB_OUT/queueing-samples
: > "$samples"
(
        trap 'exit 0' TERM
        while :; do
                if dmsetup table "$map" | grep -q queue_if_no_path; then echo on; else echo off; fi
        done
) >> "$samples" &
sampler=$!
i=0
while [ ! -s "$samples" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
lab_run r mpath-flush --json -t 8 "$map"
sleep 0.2
kill "$sampler"; wait "$sampler" 2> /dev/null
t_is "exit 4 (busy)" "$r_rc" 4
t_is "result busy" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" busy
t_is "at in-use" "$(printf '%s' "$r_out" | jq -r '.maps[0].step')" in-use
t_check "in under 3 s (deadline 8 s)" test "$r_ms" -lt 3000
t_diag "mpath-flush took $r_ms ms"
t_is "the loop device is named in the JSON" \
        "$(printf '%s' "$r_out" | jq -r '.maps[0].blockers.kernel_users[] | select(.kind == "loop") | .name')" "$lname"
t_like "and in the reason" "$(printf '%s' "$r_out" | jq -r '.maps[0].reason')" "loop device $lname"
t_like "and on stderr" "$r_err" "$lname"
t_is "no unexplained open left" "$(printf '%s' "$r_out" | jq -r '.maps[0].blockers.unexplained_opens')" 0
t_diag "table samples during the run: $(wc -l < "$samples") ($(grep -c off "$samples") without queue_if_no_path)"
t_check "queueing sampled during the run" test "$(wc -l < "$samples")" -ge 3
t_is "queueing never switched off" "$(grep -c off "$samples")" 0
t_is "the JSON says queueing stayed on" "$(printf '%s' "$r_out" | jq -r '.maps[0].queueing.after')" true
t_check "the map is there" lab_map_exists "$map"
t_check_fails "not suspended" lab_map_suspended "$map"
t_check "the loop device still reads" dd if="$loop" of=/dev/null bs=4k count=1 iflag=direct status=none

losetup -d "$loop"
lab_settle

# Another kernel user without a holders/ link: the map as the external journal of an ext4
# file system (on a file here). jbd2 names its /proc/fs/jbd2 entry after the journal device.
t_check "ext4 journal device on $map" mkfs.ext4 -q -F -O journal_dev -b 4096 "/dev/mapper/$map"
truncate -s 64M /tmp/fs.img
t_check "ext4 on a file, journal on $map" mkfs.ext4 -q -F -b 4096 -J "device=/dev/mapper/$map" /tmp/fs.img
mkdir -p /mnt/j
t_check "mounted" mount -o loop /tmp/fs.img /mnt/j
lab_run j mpath-flush --json -t 8 "$map"
t_is "external journal: busy (exit 4)" "$j_rc" 4
t_is "external journal: at in-use" "$(printf '%s' "$j_out" | jq -r '.maps[0].step')" in-use
t_is "external journal: named" "$(printf '%s' "$j_out" | jq -r '.maps[0].blockers.kernel_users[0].kind')" journal
t_check "external journal: queueing left on" lab_map_queueing "$map"
umount /mnt/j
losetup -D
lab_settle

lab_run g mpath-flush --json "$map"
t_is "once they are gone: removed (exit 0)" "$g_rc" 0
t_check_fails "the map is gone" lab_map_exists "$map"
t_done
