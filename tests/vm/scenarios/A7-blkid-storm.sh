#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A7: blkid opens the map every few milliseconds during the flush (as udev rules
# do): the map is still removed within the deadline.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
(while [ -e "/dev/mapper/$map" ]; do blkid -p "/dev/mapper/$map" > /dev/null 2>&1; sleep 0.003; done) &
storm=$!
sleep 2
lab_run r mpath-flush --json --timeout 20 "$map"
kill "$storm" 2> /dev/null
t_is "exit 0" "$r_rc" 0
t_is "result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_check "within the deadline" test "$r_ms" -lt 20000
t_check_fails "the map is gone" lab_map_exists "$map"
t_diag "mpath-flush under a blkid storm took $r_ms ms"
t_done
