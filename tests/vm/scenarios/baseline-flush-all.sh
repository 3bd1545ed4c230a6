#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Baseline: `multipath -F` with four maps, one of them mounted, with multipathd
# running and without.
# mpf-lab: mode=fast timeout=240
. /usr/lib/mpf-lab/lib.sh

lab_setup 4
busy=$(lab_map_first)
mkfs.ext4 -q -F "/dev/mapper/$busy" && mkdir -p /mnt/a && mount "/dev/mapper/$busy" /mnt/a
lab_run f multipath -F
t_is "without multipathd: multipath -F exits 1 (one map in use)" "$f_rc" 1
t_is "without multipathd: only the mounted map is left" "$(lab_maps)" "$busy"
t_diag "multipath -F (3 of 4 maps) without multipathd took $f_ms ms"

t_check "multipathd starts" lab_mpathd_start
t_check "multipathd re-creates the maps" lab_maps_create 4
lab_run f multipath -F
t_is "with multipathd: multipath -F exits 1 (one map in use)" "$f_rc" 1
sleep 1
t_is "with multipathd: only the mounted map is left" "$(lab_maps)" "$busy"
t_diag "multipath -F (3 of 4 maps) with multipathd took $f_ms ms"
umount /mnt/a
t_done
