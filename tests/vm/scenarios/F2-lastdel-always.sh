#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# F2: flush_on_last_del always in multipath.conf (written "yes", its older
# spelling: Debian 12's multipath-tools 0.9.4 rejects "always"; mpath-flush reads
# both as always). Both paths of a map are deleted
# (scsi_debug): an unused map is removed within 10 s; a mounted map stays, its
# queueing is switched off and I/O to it fails at once. With multipathd running
# (the policy read from "multipathd show config"), then with multipathd stopped
# (only our rule and unit act; the policy read from "multipath -t"). The default
# policy (unused) is B3-lastpath and F1-lastpath-queue.
# mpf-lab: mode=full timeout=300
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
sed -i 's/^defaults {/defaults {\n    flush_on_last_del yes/' /etc/multipath.conf
lab_setup 4 multipathd
multipathd reconfigure > /dev/null 2>&1
lab_maps_create 4
t_like "multipathd has the policy" "$(multipathd show config | grep flush_on_last_del | head -n 1)" \
        'flush_on_last_del "?(always|yes)'
set -- $(lab_maps)
unit_of() {
        systemd-escape --template=mpath-flush-lastpath@.service -- \
                "$(dmsetup info -c --noheadings -o uuid "$1" | sed 's/^mpath-//')"
}
one_round() {  # one_round LABEL UNUSED MOUNTED WHERE-THE-POLICY-IS-READ
        label=$1 u=$2 m=$3 src=$4
        t_diag "$label: unused map $u, mounted map $m"
        mkfs.ext4 -q "/dev/mapper/$m"
        mkdir -p "/mnt/$m" && mount "/dev/mapper/$m" "/mnt/$m"
        t_check "$label: $m queues before" lab_map_queueing "$m"

        s=$(lab_ms)
        for p in $(lab_map_paths "$u"); do lab_path_delete "$p"; done
        lab_wait_gone "$u" 30
        e=$(($(lab_ms) - s))
        t_check_fails "$label: unused $u is gone" lab_map_exists "$u"
        t_check "$label: ... within 10 s ($e ms)" test "$e" -le 10000

        mu=$(unit_of "$m")
        for p in $(lab_map_paths "$m"); do lab_path_delete "$p"; done
        t_check "$label: the lastpath unit for mounted $m switched queueing off" lab_wait_journal "$mu" \
                "$m: .*flush_on_last_del is always \\($src, defaults section\\): queueing switched off"
        lab_wait_journal "$mu" "$m: .*in use, kept, queueing off" 10
        journalctl -b -u "$mu" -o short-monotonic --no-pager
        t_check "$label: mounted $m stays" lab_map_exists "$m"
        t_check_fails "$label: $m no longer queues" lab_map_queueing "$m"
        lab_run r timeout 20 dd if="/dev/mapper/$m" of=/dev/null bs=4096 count=1 iflag=direct
        t_check_fails "$label: a read of $m fails" test "$r_rc" -eq 0
        t_check "$label: ... at once (under 5 s), it does not hang" test "$r_ms" -lt 5000
        umount "/mnt/$m" 2>/dev/null || umount -l "/mnt/$m"
}

one_round "with multipathd" "$1" "$2" "multipathd show config"
t_check "multipathd stops" lab_mpathd_stop
# multipathd switches queueing off on every map when it stops; make the two maps
# queue again (queue_without_daemon yes, or multipathd killed).
for k in "$3" "$4"; do dmsetup message "$k" 0 queue_if_no_path; done
one_round "without multipathd" "$3" "$4" "multipath -t"
t_done
