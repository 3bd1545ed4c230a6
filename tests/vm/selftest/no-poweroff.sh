#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: the scenario passes, but leaves dirty pages on a queueing map
# with no paths, so the guest's final sync blocks and it never powers off (the
# shutdown hang users report).
# mpf-lab: mode=fast timeout=100
. /usr/lib/mpf-lab/lib.sh
lab_udev_start
lab_san 1
lab_maps_create 1 || exit 1
map=$(lab_map_first)
dmsetup message "$map" 0 queue_if_no_path
for p in $(lab_map_paths "$map"); do lab_path_offline "$p"; done
sleep 100000 < "/dev/mapper/$map" &         # keeps dd's close from being the last one
sleep 1
dd if=/dev/zero of="/dev/mapper/$map" bs=64k count=16 2> /dev/null
t_ok "dirty pages left on a pathless queueing map"
t_done
