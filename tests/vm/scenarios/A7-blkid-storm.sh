#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A7: blkid opens the map every few milliseconds during the flush (as udev rules
# do): the map is still removed within the deadline.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
# A signature, so that every blkid that really opened and read the map says so (exit 0).
t_check "a swap signature on the map" mkswap -q "/dev/mapper/$map"
lab_settle
# The storm counts the probes that found the signature: the map was opened and read.
echo 0 > /tmp/probes
(n=0; while [ -e "/dev/mapper/$map" ]; do
        blkid -p "/dev/mapper/$map" > /dev/null 2>&1 && n=$((n + 1)) && echo "$n" > /tmp/probes
        sleep 0.003
done) &
storm=$!
sleep 2
before=$(cat /tmp/probes)
t_check "the storm runs: blkid read the map $before times in 2 s" test "$before" -ge 5
t_check "the storm still runs as the flush starts" kill -0 "$storm"
lab_run r mpath-flush --json --timeout 20 "$map"
during=$(($(cat /tmp/probes) - before))
kill "$storm" 2> /dev/null
t_check "blkid read the map during the flush ($during times)" test "$during" -ge 1
t_is "exit 0" "$r_rc" 0
t_is "result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_check "within the deadline" test "$r_ms" -lt 20000
t_check_fails "the map is gone" lab_map_exists "$map"
t_diag "mpath-flush under a blkid storm took $r_ms ms"
t_done
