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
# It also counts the probes it started (a probe may fail while the map is claimed, or read
# nothing once queueing is off).
echo 0 > /tmp/probes
echo 0 > /tmp/tries
(n=0 k=0; while [ -e "/dev/mapper/$map" ]; do
        k=$((k + 1)); echo "$k" > /tmp/tries
        blkid -p "/dev/mapper/$map" > /dev/null 2>&1 && n=$((n + 1)) && echo "$n" > /tmp/probes
        sleep 0.003
done) &
storm=$!
# until it has read the map 5 times (a fixed 2 s saw only 4 reads with another guest on the host)
i=0
while read -r before < /tmp/probes; [ "${before:-0}" -lt 5 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
before=$(cat /tmp/probes)
t_check "the storm runs: blkid read the map $before times in $((i / 10)).$((i % 10)) s" test "$before" -ge 5
t_check "the storm still runs as the flush starts" kill -0 "$storm"
tries0=$(cat /tmp/tries)
lab_run r mpath-flush --json --timeout 20 "$map"
during=$(($(cat /tmp/probes) - before))
tried=$(($(cat /tmp/tries) - tries0))
kill "$storm" 2> /dev/null
# On a loaded host a probe can take longer than a fast flush: that blkid was at the map during
# the run is what counts here, a probe that started or ended in it (CI saw 0 reads in a 1.5 s
# run, and once 0 starts and 1 read in a 1.2 s run)
t_check "blkid probed the map during the flush ($tried probes started, $during read it)" \
        test $((tried + during)) -ge 1
t_is "exit 0" "$r_rc" 0
t_is "result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_check "within the deadline" test "$r_ms" -lt 20000
t_check_fails "the map is gone" lab_map_exists "$map"
t_diag "mpath-flush under a blkid storm took $r_ms ms"
t_done
