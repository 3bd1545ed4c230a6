#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A3: a mounted map and a map with an LVM volume on top are refused as busy; each
# stays intact, not suspended, queueing as before, and the JSON names the mount
# or the holder.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
# One LUN for both cases, one after the other: scsi_debug LUNs share one store,
# so a PV on a second LUN would show up twice and LVM would refuse it.
mnt=$(lab_map_first) lvm=$(lab_map_first)
t_check "$mnt queues" lab_map_queueing "$mnt"
t_check "ext4 on $mnt" mkfs.ext4 -q -F "/dev/mapper/$mnt"
mkdir -p /mnt/a
t_check "$mnt is mounted" mount "/dev/mapper/$mnt" /mnt/a

lab_run r mpath-flush --json "$mnt"
t_is "mounted: exit 4 (busy)" "$r_rc" 4
t_is "mounted: result busy" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" busy
t_is "mounted: refused at the in-use step, before anything is changed" "$(printf '%s' "$r_out" | jq -r '.maps[0].step')" in-use
t_is "mounted: the mount point is named" "$(printf '%s' "$r_out" | jq -r '.maps[0].blockers.mounts[0].target')" /mnt/a
t_like "mounted: stderr says why" "$r_err" "$mnt.*(busy|mounted).*/mnt/a"
t_check "mounted: the map is there" lab_map_exists "$mnt"
t_check_fails "mounted: not suspended" lab_map_suspended "$mnt"
t_check "mounted: queueing as before (on)" lab_map_queueing "$mnt"
t_check "mounted: the file system still works" sh -c "echo x > /mnt/a/f && sync"
umount /mnt/a

wipefs -a -q "/dev/mapper/$lvm"
t_check "LVM: PV, VG, LV on $lvm" sh -c "pvcreate -q -ff -y /dev/mapper/$lvm && vgcreate -q vg0 /dev/mapper/$lvm && lvcreate -q -L 8M -n lv0 vg0"
lab_settle
dmsetup ls --tree
lab_run r mpath-flush --json "$lvm"
t_is "LVM: exit 4 (busy)" "$r_rc" 4
t_is "LVM: result busy" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" busy
t_is "LVM: refused at the in-use step, before anything is changed" "$(printf '%s' "$r_out" | jq -r '.maps[0].step')" in-use
holder=$(printf '%s' "$r_out" | jq -r '.maps[0].blockers.holders | join(" ")')
t_like "LVM: the holder is named" "$holder" "vg0-lv0|dm-[0-9]+"
t_check "LVM: the map is there" lab_map_exists "$lvm"
t_check "LVM: the LV is there" lab_map_exists vg0-lv0
t_check_fails "LVM: not suspended" lab_map_suspended "$lvm"
t_check "LVM: queueing as before (on)" lab_map_queueing "$lvm"
vgchange -q -an vg0 > /dev/null
t_done
