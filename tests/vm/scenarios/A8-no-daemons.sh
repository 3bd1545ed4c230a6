#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A8: neither udevd nor multipathd runs: mpath-flush removes the map, manages
# /dev/mapper itself and never waits for udev.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 2
set -- $(lab_maps)
t_check "udevd stops" lab_udev_stop
sleep 1
t_check_fails "udevd is not running" pidof systemd-udevd
t_check_fails "multipathd is not running" pidof multipathd
lab_run r mpath-flush --json --timeout 20 "$1"
t_is "exit 0" "$r_rc" 0
t_is "result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_check "well within the deadline" test "$r_ms" -lt 10000
t_check_fails "the map is gone" lab_map_exists "$1"
t_check_fails "its /dev/mapper node is gone" test -e "/dev/mapper/$1"
lab_run r mpath-flush --no-udev-sync "$2"
t_is "--no-udev-sync: exit 0" "$r_rc" 0
t_check_fails "--no-udev-sync: the map is gone" lab_map_exists "$2"
t_diag "without udevd: $r_ms ms"
t_done
