#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A measurement, not in the vm suite (it takes about 15 minutes): poweroff of
# the full guest with SHUTDOWN_MAPS (default 256) unused two-path maps and
# mpath-flush-shutdown.service enabled. Does the late flush remove them all
# within its deadline (mpath-flush --all --timeout 20, TimeoutStopSec=30)?
# The host side (shutdown-flush.host) counts the maps mpath-flush removed at
# shutdown and times the unit's stop from the journal.
#   tests/vm/run --build build tests/vm/bench/shutdown-flush.sh
#   tests/vm/run --build build --set SHUTDOWN_MAPS=64 --name shutdown-64 tests/vm/bench/shutdown-flush.sh
# mpf-lab: mode=full timeout=2700 mem=3072 enable=mpath-flush-shutdown.service
. /usr/lib/mpf-lab/lib.sh
SHUTDOWN_MAPS=${SHUTDOWN_MAPS:-256}

t_check "the system finished booting" systemctl is-system-running --wait
t_check "mpath-flush-shutdown.service is active" systemctl is-active mpath-flush-shutdown.service
t0=$(lab_ms)
lab_san "$SHUTDOWN_MAPS"
udevadm settle -t 1800
t1=$(lab_ms)
t_diag "$((2 * SHUTDOWN_MAPS)) paths settled in $((t1 - t0)) ms"
lab_mpathd_running || t_check "multipathd starts" lab_mpathd_start
multipathd reconfigure > /dev/null 2>&1
i=0
while [ "$(lab_maps | wc -l)" -lt "$SHUTDOWN_MAPS" ] && [ $i -lt 1800 ]; do
        sleep 1; i=$((i + 1))
done
udevadm settle -t 1800
t2=$(lab_ms)
t_diag "multipathd made $(lab_maps | wc -l) maps in $((t2 - t1)) ms"
t_is "$SHUTDOWN_MAPS maps exist before poweroff" "$(lab_maps | wc -l)" "$SHUTDOWN_MAPS"
lab_maps > "$MPF_LAB_OUT/shutdown-maps"
echo "MPF-SHUTDOWN: poweroff requested" > /dev/kmsg
t_done
