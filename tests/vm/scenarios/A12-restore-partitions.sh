#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A12: a flush that fails after it removed the partition maps makes them again.
# A process opens the map the moment its first partition map is gone, after the
# in-use check: mpath-flush gives up when its deadline passes (at sole-opener,
# or at remove), and the two partition maps are back with their names, UUIDs
# and tables, their /dev/mapper links made by udev, and queueing as found. Once
# that process is gone, a second run removes everything.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "two partition maps exist" lab_partition "$map" 2
parts() {
        for p in "$map-part1" "$map-part2"; do
                printf '%s %s %s\n' "$p" "$(dmsetup info -c --noheadings -o uuid "$p" 2>&1)" \
                        "$(dmsetup table "$p" 2>&1)"
        done
}
before=$(parts)
printf '%s\n' "$before"

# Spins until the first partition map's link is gone, then holds the map open.
(while [ -e "/dev/mapper/$map-part1" ]; do :; done; exec sleep 120 < "/dev/mapper/$map") &
opener=$!

# -t 6: the run waits its whole deadline at sole-opener; with -t 3 a loaded host once had
# udev still processing the partition maps' removal when the deadline came (the spinning
# opener has one of the guest's two CPUs meanwhile), and the run stopped at partitions.
lab_run r mpath-flush --json --timeout 6 "$map"
printf '%s\n' "$r_out" "$r_err"
t_is "mpath-flush exits 4 (busy)" "$r_rc" 4
t_like "it gave up after the partitions step" "$(printf '%s' "$r_out" | jq -r '.maps[0].step')" \
        '^(sole-opener|remove)$'
t_like "it names the late opener" "$(printf '%s' "$r_out" | jq -r '.maps[0].reason')" "pid $opener"
t_like "the reason says the partition maps were re-created" \
        "$(printf '%s' "$r_out" | jq -r '.maps[0].reason')" '2 partition map\(s\) were re-created'
t_is "the partition maps are back with their names, UUIDs and tables" "$(parts)" "$before"
lab_settle
t_check "udev made /dev/mapper/$map-part1 again" test -b "/dev/mapper/$map-part1"
t_check "udev made /dev/mapper/$map-part2 again" test -b "/dev/mapper/$map-part2"
t_check "queueing is on again, as found" lab_map_queueing "$map"
t_is "queueing was reported restored" "$(printf '%s' "$r_out" | jq -r '.maps[0].queueing.after')" true

kill "$opener"; wait "$opener" 2> /dev/null
lab_run r mpath-flush --json "$map"
t_is "without the opener: exit 0" "$r_rc" 0
t_check_fails "partition 1 is gone" lab_map_exists "$map-part1"
t_check_fails "partition 2 is gone" lab_map_exists "$map-part2"
t_check_fails "the map is gone" lab_map_exists "$map"
t_done
