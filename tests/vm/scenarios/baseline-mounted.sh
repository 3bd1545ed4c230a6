#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Baseline: `multipath -f` (delegated to multipathd) and `dmsetup remove` on a
# mounted map refuse with a string that names nobody, and leave queueing on.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "the map queues (multipathd set queue_if_no_path)" lab_map_queueing "$map"
t_check "ext4 is made on the map" mkfs.ext4 -q -F "/dev/mapper/$map"
mkdir -p /mnt/a
t_check "the map is mounted" mount "/dev/mapper/$map" /mnt/a

lab_run f multipath -f "$map"
t_is "multipath -f exits 1" "$f_rc" 1
t_like "it says 'map in use'" "$f_out $f_err" "in use"
t_check "the map is still there" lab_map_exists "$map"
t_check_fails "the map is not suspended" lab_map_suspended "$map"
t_check "queueing is still on" lab_map_queueing "$map"

lab_run d dmsetup remove "$map"
t_is "dmsetup remove exits 1" "$d_rc" 1
t_like "it says the device is busy" "$d_err" "busy"
t_check "the map is still there" lab_map_exists "$map"
umount /mnt/a
t_done
