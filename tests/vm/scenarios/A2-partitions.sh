#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A2: a map with two kpartx partition maps: the partitions go first, then the map.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "two partition maps exist" lab_partition "$map" 2
dmsetup ls --tree

lab_run r mpath-flush --json "$map"
t_is "exit 0" "$r_rc" 0
t_is "result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_is "both partitions reported" "$(printf '%s' "$r_out" | jq -r '.maps[0].partitions | sort | join(" ")')" "$map-part1 $map-part2"
t_check_fails "partition 1 is gone" lab_map_exists "$map-part1"
t_check_fails "partition 2 is gone" lab_map_exists "$map-part2"
t_check_fails "the map is gone" lab_map_exists "$map"
t_is "no dm device left" "$(dmsetup ls | grep -vc 'No devices')" 0
t_diag "mpath-flush with two partition maps took $r_ms ms"
t_done
