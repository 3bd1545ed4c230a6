#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Baseline: `multipath -f` on a map with two kpartx partition maps.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1
t_check "two partition maps exist" lab_partition "$map" 2
dmsetup ls --tree

lab_run f multipath -f "$map"
t_is "multipath -f exits 0" "$f_rc" 0
t_check_fails "partition 1 is gone" lab_map_exists "$map-part1"
t_check_fails "partition 2 is gone" lab_map_exists "$map-part2"
t_check_fails "the map is gone" lab_map_exists "$map"
t_diag "multipath -f with two partition maps took $f_ms ms"
t_done
