#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Baseline: what `multipath -f` does today to an unused two-path map, without
# multipathd and with it (then it delegates to the daemon's "del map").
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1
t_is "the map has two paths" "$(lab_map_paths "$map" | wc -l)" 2
multipath -ll

lab_run f multipath -f "$map"
t_is "without multipathd: multipath -f exits 0" "$f_rc" 0
t_check_fails "without multipathd: the map is gone" lab_map_exists "$map"
t_diag "multipath -f without multipathd took $f_ms ms"
t_is "path devices stay" "$(ls -d /sys/block/sd* | wc -l)" 2

t_check "multipathd starts" lab_mpathd_start
t_check "multipathd re-creates the map" lab_maps_create 1
map=$(lab_map_first)
lab_mpathd_maps_have "multipathd lists the map before the flush" "$map"
lab_run f multipath -f "$map"
t_is "with multipathd: multipath -f exits 0" "$f_rc" 0
t_check "with multipathd: the map is gone" lab_wait_gone "$map" 5
lab_mpathd_maps_lack "multipathd no longer lists it" "$map"
t_diag "multipath -f with multipathd took $f_ms ms"
t_done
