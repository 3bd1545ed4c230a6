#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# B3: the last path of a map is deleted (echo 1 > /sys/block/sdX/device/delete),
# under multipath's default flush_on_last_del (unused). Unused map: gone within
# 10 s. Mounted map: it stays and keeps queueing (no_path_retry queue: I/O waits
# for a path), the lastpath unit says so, and what was written and synced before
# is on the disk (checked from the host, B3-lastpath.host). Both with multipathd
# running, then again with multipathd stopped (where only our rule acts).
# flush_on_last_del always is F2-lastdel.
# Four qemu LUNs: disk K is the map with DM UUID mpath-35000c500a000000K.
# mpf-lab: mode=full timeout=400 disks=4 disksize=32
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
lab_qemu_san
t_check "four maps from the qemu disks" lab_maps_create 4
map_of() {  # disk index -> map name
        for _m in $(lab_maps); do
                [ "$(dmsetup info -c --noheadings -o uuid "$_m")" = "mpath-35000c500a000000$1" ] && echo "$_m"
        done
}
delete_paths() {
        for _p in $(lab_map_paths "$1"); do lab_path_delete "$_p"; done
}
lastpath_unit() { echo "mpath-flush-lastpath@35000c500a000000$1.service"; }
one_round() {  # one_round LABEL UNUSED_DISK MOUNTED_DISK
        label=$1 u=$(map_of "$2") m=$(map_of "$3")
        t_diag "$label: unused map $u (disk $2), mounted map $m (disk $3)"
        mkfs.ext4 -q "/dev/mapper/$m"
        mkdir -p "/mnt/$m" && mount "/dev/mapper/$m" "/mnt/$m"
        # A file written and synced before the paths go (the host checks it).
        printf 'B3 %s written before the last path was deleted\n' "$label" > "/mnt/$m/before"
        sync -f "/mnt/$m/before"
        t_check "$label: $m queues before" lab_map_queueing "$m"

        s=$(lab_ms)
        delete_paths "$u"
        lab_wait_gone "$u" 30
        e=$(($(lab_ms) - s))
        t_check_fails "$label: unused $u is gone" lab_map_exists "$u"
        t_diag "$label: unused $u gone after $e ms"
        t_check "$label: ... within 10 s ($e ms)" test "$e" -le 10000

        s=$(lab_ms)
        delete_paths "$m"
        t_check "$label: the lastpath unit ran for mounted $m: in use, kept, queueing left as configured" \
                lab_wait_journal "$(lastpath_unit "$3")" \
                "$m: .*flush_on_last_del is unused .*in use, kept, queueing left as configured"
        t_diag "$label: lastpath unit for $m done after $(($(lab_ms) - s)) ms"
        journalctl -b -u "$(lastpath_unit "$3")" -o short-monotonic --no-pager
        t_check "$label: mounted $m stays" lab_map_exists "$m"
        t_check "$label: $m still queues (the policy: wait for a path)" lab_map_queueing "$m"
        # Done with it: no path will come back, so let its I/O fail before the unmount.
        dmsetup message "$m" 0 fail_if_no_path
        umount "/mnt/$m" 2>/dev/null || umount -l "/mnt/$m"
}

one_round "with multipathd" 0 1
t_check "multipathd stops" lab_mpathd_stop
# multipathd switches queueing off on every map when it stops (queue_without_daemon
# no, the default); a map that queues without multipathd (queue_without_daemon yes,
# or multipathd killed) is the case that matters here: make the two maps queue.
for k in 2 3; do dmsetup message "$(map_of $k)" 0 queue_if_no_path; done
one_round "without multipathd" 2 3
journalctl -b -u "$(lastpath_unit 2)" -o cat --no-pager
# "flush_on_last_del is unused (...): removed", not "removed already, nothing to do"
t_check "without multipathd, our unit removed the unused map" \
        lab_wait_journal "$(lastpath_unit 2)" "flush_on_last_del is unused .*: removed: "
t_done
