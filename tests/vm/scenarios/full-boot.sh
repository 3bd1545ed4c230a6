#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The systemd guest: boots to multi-user with udevd and multipathd, a two-path
# map appears, mpath-flush's units and rules are installed where meson put them,
# and the guest powers off with the journal brought back.
# mpf-lab: mode=full timeout=150
. /usr/lib/mpf-lab/lib.sh

t_is "systemd is PID 1" "$(cat /proc/1/comm)" systemd
t_check "the system finished booting" systemctl is-system-running --wait
systemd-analyze time || true
lab_san 1
t_check "multipathd is active" systemctl is-active multipathd.service
t_check "a two-path map is created" lab_maps_create 1
map=$(lab_map_first)
t_check "the map queues" lab_map_queueing "$map"
t_check "mpath-flush is installed" command -v mpath-flush
t_done
