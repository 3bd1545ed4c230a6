#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A1: an unused two-path map is removed, without multipathd and with it; the path
# devices stay, multipathd forgets the map and does not re-create it during 30 s
# of path checking.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1

lab_run r mpath-flush --json "$map"
t_is "without multipathd: exit 0" "$r_rc" 0
t_is "without multipathd: result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_check_fails "without multipathd: the map is gone" lab_map_exists "$map"
t_check_fails "without multipathd: /dev/mapper/$map is gone" test -e "/dev/mapper/$map"
t_is "path devices stay" "$(ls -d /sys/block/sd* | wc -l)" 2
t_diag "mpath-flush without multipathd took $r_ms ms"

t_check "multipathd starts" lab_mpathd_start
t_check "multipathd re-creates the map" lab_maps_create 1
map=$(lab_map_first)
lab_mpathd_maps_have "multipathd lists the map before the flush" "$map"
t_like "the dry run reads two active paths from the kernel's status" \
        "$(mpath-flush --dry-run "$map")" "flush: fsync \\(2 active path"
lab_run r mpath-flush --json "$map"
t_is "with multipathd: exit 0" "$r_rc" 0
t_is "with multipathd: result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_is "with multipathd: step done" "$(printf '%s' "$r_out" | jq -r '.maps[0].step')" done
t_check_fails "with multipathd: the map is gone" lab_map_exists "$map"
t_diag "mpath-flush with multipathd took $r_ms ms"
sleep 1
lab_mpathd_maps_lack "multipathd no longer lists it" "$map"
sleep 30
t_is "not re-created after 30 s of path checking" "$(lab_maps | wc -l)" 0
t_check "multipathd still answers after those 30 s" lab_mpathd_running
lab_mpathd_maps_lack "multipathd lists no map after those 30 s" '..*'
t_is "path devices still there" "$(ls -d /sys/block/sd* | wc -l)" 2
t_done
