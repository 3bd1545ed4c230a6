#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The lab's second SAN: a qemu disk seen through two virtio-scsi controllers
# becomes one two-path map; what is written through the map is on the host's
# disk file after the guest is gone (checked by qemu-disks.host).
# mpf-lab: mode=fast timeout=150 disks=1 disksize=32
. /usr/lib/mpf-lab/lib.sh

lab_udev_start
lab_qemu_san
t_check "multipathd starts" lab_mpathd_start
t_check "one map from the qemu disk" lab_maps_create 1
map=$(lab_map_first)
multipath -ll
t_is "it has two paths" "$(lab_map_paths "$map" | wc -l)" 2
printf 'mpf-lab marker\n' > /tmp/marker
t_check "a marker is written at sector 100" \
        dd if=/tmp/marker of="/dev/mapper/$map" bs=512 seek=100 conv=sync,fsync status=none
t_done
