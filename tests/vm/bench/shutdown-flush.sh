#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Poweroff of the full guest with SHUTDOWN_MAPS (default 256) unused two-path
# maps and mpath-flush-shutdown.service enabled. Does the late flush remove them
# all within its deadline (mpath-flush --all --timeout 20, TimeoutStopSec=30)?
# With 256 maps a measurement, not in the vm suite (the paths take about 15
# minutes to settle; settling them with multipathd stopped and starting it after was
# slower at 32 maps: 63 s + 65 s for the maps against 100 s + 1 s); the suite runs it
# with 32 maps as B6-shutdown-32
# (tests/vm/meson.build). The host side (shutdown-flush.host) counts the maps
# mpath-flush removed at shutdown, times the unit's ExecStop from markers the
# guest writes around it, and checks the poweroff time.
# lvm2's blk-availability.service (blkdeactivate) stops before our unit and removes
# most unused maps itself, so by default it is stopped before the maps exist (it
# then has nothing to do at poweroff) and the late flush meets all of them;
# SHUTDOWN_BLK_AVAILABILITY=1 leaves it as Debian installs it.
# SHUTDOWN_UDEV_LIGHT=1 masks sg3-utils-udev's path rules for the whole boot (lab_udev_light):
# B6 sets it, since its 64 paths took 197 s to settle with Debian's rules (2026-12-01,
# 96775fe), and what it checks is the unit's ordering and deadline, not the path rules
# (B4 keeps a poweroff with Debian's rules). The measurement in the README keeps Debian's
# rules (the default, 0).
#   tests/vm/run --build build tests/vm/bench/shutdown-flush.sh
#   tests/vm/run --build build --set SHUTDOWN_MAPS=64 --name shutdown-64 tests/vm/bench/shutdown-flush.sh
# mpf-lab: mode=full timeout=2700 mem=3072 cpu=heavy enable=mpath-flush-shutdown.service
. /usr/lib/mpf-lab/lib.sh
SHUTDOWN_MAPS=${SHUTDOWN_MAPS:-256}
SHUTDOWN_BLK_AVAILABILITY=${SHUTDOWN_BLK_AVAILABILITY:-0}
SHUTDOWN_UDEV_LIGHT=${SHUTDOWN_UDEV_LIGHT:-0}

t_check "the system finished booting" systemctl is-system-running --wait
t_check "mpath-flush-shutdown.service is active" systemctl is-active mpath-flush-shutdown.service
if [ "$SHUTDOWN_BLK_AVAILABILITY" = 0 ]; then
        t_check "blk-availability.service is stopped and masked (no map yet for its blkdeactivate)" \
                systemctl stop blk-availability.service
        systemctl mask --runtime blk-availability.service > /dev/null 2>&1
        t_is "blk-availability.service is inactive" "$(systemctl is-active blk-availability.service)" inactive
fi
[ "$SHUTDOWN_UDEV_LIGHT" != 1 ] || lab_udev_light
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
# multipathd finishes the reconfigure first (in the first run it was still re-adding the
# 512 paths when the late flush began, and answered its calls late)
i=0
until multipathd show daemon 2> /dev/null | grep -q idle || [ $i -ge 600 ]; do sleep 1; i=$((i + 1)); done
t_diag "multipathd: $(multipathd show daemon 2>&1) after $i s"
udevadm settle -t 600
# The unit's stop timed in the guest: journald stamps a line when it reads it, seconds late
# under the shutdown's flood of multipathd messages. A drop-in runs a marker before the unit's
# own ExecStop and after it ("+": outside the unit's sandbox; its device policy keeps even
# that off /dev/kmsg, so the marker writes the uptime and the maps present to a file in the
# results, saved at poweroff).
cmd=$(systemctl cat mpath-flush-shutdown.service | sed -n 's/^ExecStop=//p' | tail -n 1)
cat > /run/mpf-bench-mark << EOF
read up _ < /proc/uptime
echo "\$1 \$up \$(dmsetup ls --target multipath 2> /dev/null | grep -c mpath) \${SERVICE_RESULT:-} \${EXIT_STATUS:-}" >> "$MPF_LAB_OUT/unit-times"
EOF
mkdir -p /run/systemd/system/mpath-flush-shutdown.service.d
cat > /run/systemd/system/mpath-flush-shutdown.service.d/bench.conf << EOF
[Service]
ExecStop=
ExecStop=+/bin/sh /run/mpf-bench-mark begins
ExecStop=$cmd
ExecStopPost=+/bin/sh /run/mpf-bench-mark ended
EOF
systemctl daemon-reload
t_like "the unit's ExecStop is mpath-flush after a marker" \
        "$(systemctl show -p ExecStop --value mpath-flush-shutdown.service | tr '\n' ' ')" "mpf-bench-mark.*mpath-flush --all"
sh /run/mpf-bench-mark test && t_like "the marker writes the uptime and the maps present" "$(cat "$MPF_LAB_OUT/unit-times")" "^test [0-9.]+ $SHUTDOWN_MAPS "
: > "$MPF_LAB_OUT/unit-times"
lab_maps > "$MPF_LAB_OUT/shutdown-maps"
echo "MPF-SHUTDOWN: poweroff requested" > /dev/kmsg
t_done
