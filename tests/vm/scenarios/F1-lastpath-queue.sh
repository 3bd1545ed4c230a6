#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# F1: multipath's default flush_on_last_del (unused), multipathd running. Both
# paths of a mounted map are deleted (scsi_debug, echo 1 > .../device/delete):
# the lastpath unit runs and leaves the map queueing (no_path_retry queue); a
# write made meanwhile waits instead of failing; the paths come back by a SCSI
# rescan, multipathd puts them back in the map, the write completes and its
# data is on the disk (checksum after unmount, cache drop and mount again); the
# kernel logs no file system or buffer I/O error. With the old lastpath script
# (queueing switched off when the map was in use) the write failed.
# Negative control (not in the suite): what the old lastpath script did to a map
# in use (queueing switched off), here through the override:
#   tests/vm/run --set F1_OVERRIDE=always --name F1-always tests/vm/scenarios/F1-lastpath-queue.sh
# mpf-lab: mode=full timeout=300
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
if [ -n "${F1_OVERRIDE:-}" ]; then
        mkdir -p /run/systemd/system/mpath-flush-lastpath@.service.d
        printf '[Service]\nEnvironment=MPATH_FLUSH_ON_LAST_DEL=%s\n' "$F1_OVERRIDE" \
                > /run/systemd/system/mpath-flush-lastpath@.service.d/f1.conf
        systemctl daemon-reload
        t_diag "negative control: MPATH_FLUSH_ON_LAST_DEL=$F1_OVERRIDE"
fi
lab_setup 1 multipathd
m=$map
wwid=$(dmsetup info -c --noheadings -o uuid "$m" | sed 's/^mpath-//')
unit=$(systemd-escape --template=mpath-flush-lastpath@.service -- "$wwid")
t_diag "map $m, WWID $wwid, unit $unit"
paths=$(lab_map_paths "$m")
hosts=
for p in $paths; do
        hosts="$hosts $(basename "$(dirname "$(dirname "$(readlink -f "/sys/block/$p/device")")")")"
done
t_diag "paths $(echo $paths), SCSI hosts$hosts"
t_is "two paths" "$(echo "$paths" | wc -w)" 2

mkfs.ext4 -q "/dev/mapper/$m"
mkdir -p /mnt/f1 && mount "/dev/mapper/$m" /mnt/f1
head -c 1048576 /dev/urandom > /tmp/f1.data
want=$(md5sum < /tmp/f1.data)
t_check "$m queues before" lab_map_queueing "$m"

for p in $paths; do lab_path_delete "$p"; done
t_check "the lastpath unit ran and says: in use, kept, queueing left as configured" \
        lab_wait_journal "$unit" "$m: .*flush_on_last_del is unused .*in use, kept, queueing left as configured"
lab_wait_journal "$unit" "Deactivated successfully|Failed with result" 10
journalctl -b -u "$unit" -o short-monotonic --no-pager
t_check "the map stays" lab_map_exists "$m"
t_check "it still queues (no_path_retry queue)" lab_map_queueing "$m"
t_check_fails "the unit did not fail" lab_wait_journal "$unit" "Failed with result" 1

# A write with fsync while no path exists: it must wait, not fail.
rm -f /tmp/f1.rc
(dd if=/tmp/f1.data of=/mnt/f1/during bs=64k conv=fsync 2> /tmp/f1.err; echo $? > /tmp/f1.rc) &
sleep 4
t_check_fails "the write waits (not finished after 4 s)" test -e /tmp/f1.rc
t_check "the map still queues" lab_map_queueing "$m"

s=$(lab_ms)
for h in $hosts; do echo "- - -" > "/sys/class/scsi_host/$h/scan"; done
lab_settle
i=0
while [ ! -e /tmp/f1.rc ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
t_diag "paths back in $m: $(echo $(lab_map_paths "$m")); the write ended $(($(lab_ms) - s)) ms after the rescan"
t_is "the write completes once the paths are back" "$(cat /tmp/f1.rc 2>/dev/null)" 0
cat /tmp/f1.err
t_is "what it wrote reads back" "$(md5sum < /mnt/f1/during)" "$want"
umount /mnt/f1
echo 3 > /proc/sys/vm/drop_caches
t_check "the file system mounts again" mount "/dev/mapper/$m" /mnt/f1
t_is "the data is on the disk (checksum after a remount)" "$(md5sum < /mnt/f1/during 2>&1)" "$want"
umount /mnt/f1
t_check "fsck finds the file system clean" fsck.ext4 -fn "/dev/mapper/$m"
errs=$(dmesg | grep -E 'EXT4-fs (error|warning)|Buffer I/O error|JBD2: .*(error|abort)|Aborting journal' || true)
t_is "no file system or buffer I/O error in the kernel log" "$errs" ""
t_done
