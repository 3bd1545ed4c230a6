#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# F2: flush_on_last_del always in multipath.conf (written "yes", its older
# spelling: Debian 12's multipath-tools 0.9.4 rejects "always"; mpath-flush reads
# both as always). Both paths of a map are deleted
# (scsi_debug): an unused map is removed within 10 s; a mounted map stays, its
# queueing is switched off and I/O to it fails at once. With multipathd running
# (the policy read from "multipathd show config"), then with multipathd stopped
# (only our rule and unit act; the policy read from "multipath -t"). The default
# policy (unused) is B3-lastpath and F1-lastpath-queue. The second round's
# mounted map has an undo record left behind (a flusher and its guardian killed
# as a unit's cgroup is, once queueing was off): it is put back first, and the
# policy still switches queueing off.
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
# A flusher of $m and its guardian killed as a unit's cgroup is, once queueing is off: its undo
# record is left, for the next flusher to switch queueing on again (as that one found it). To
# kill it there, its flush step is made to stall (as E3's): a write owes the paths a cache
# flush, and every SCSI command takes 250 jiffies (1 s: this kernel has HZ=250; scsi_debug's
# delay) while the flush waits for it.
leave_record() {
        dbg=/sys/bus/pseudo/drivers/scsi_debug
        err=$MPF_LAB_OUT/f2-kill.err
        dd if=/dev/urandom of="/dev/mapper/$m" bs=64k count=4 status=none
        lab_settle
        echo 250 > "$dbg/delay"
        systemd-run --scope --unit=mpf-f2-killed --quiet mpath-flush -v -t 20 "$m" 2> "$err" &
        _pid=$!
        _i=0
        until grep -q "$m: flush: starting" "$err" || [ $_i -ge 200 ]; do sleep 0.05; _i=$((_i + 1)); done
        _cg=/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$_pid/cgroup")
        t_like "$label: a flusher of $m in its own scope ($_cg)" "$_cg" 'mpf-f2-killed\.scope$'
        echo 1 > "$_cg/cgroup.kill"
        wait "$_pid"; _rc=$?
        # scsi_debug takes the delay back once no command is in flight
        _i=0
        until echo 0 > "$dbg/delay" 2> /dev/null || [ $_i -ge 100 ]; do sleep 0.1; _i=$((_i + 1)); done
        t_is "$label: SCSI commands are quick again" "$(cat "$dbg/delay")" 0
        # the write-back worker dies once its cache flush is over
        _i=0
        while [ -s "$_cg/cgroup.procs" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
        t_like "$label: a flusher of $m killed with its guardian in its flush step (exit $_rc)" \
                "$(cat "$err")" "$m: flush: starting"
        _rec=/run/mpath-flush/undo/$(dmsetup info -c --noheadings -o uuid "$m")
        t_is "$label: ... left its record, queueing off, no process of it" \
                "$(grep -c '^queueing-off kernel' "$_rec" 2> /dev/null)/$(lab_map_queueing "$m" && echo on || echo off)/$(cat "$_cg/cgroup.procs" 2> /dev/null | wc -l)" 1/off/0
}
one_round() {  # one_round LABEL UNUSED MOUNTED WHERE-THE-POLICY-IS-READ [leave-record]
        label=$1 u=$2 m=$3 src=$4
        t_diag "$label: unused map $u, mounted map $m"
        t_check "$label: $m queues before" lab_map_queueing "$m"
        [ -z "${5:-}" ] || leave_record
        mkfs.ext4 -q "/dev/mapper/$m"
        mkdir -p "/mnt/$m" && mount "/dev/mapper/$m" "/mnt/$m"

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
        [ -z "${5:-}" ] || t_check "$label: ... after it dropped the record's queueing marks" lab_wait_journal \
                "$mu" "$m: last-path: an undo record was left .*queueing stays off"
        lab_wait_journal "$mu" "$m: .*in use, kept, queueing off" 10
        journalctl -b -u "$mu" -o short-monotonic --no-pager
        t_check "$label: mounted $m stays" lab_map_exists "$m"
        t_check_fails "$label: $m no longer queues" lab_map_queueing "$m"
        # were it queueing (a regression), the read below would hang for good, and the guest with it
        lab_map_queueing "$m" && dmsetup message "$m" 0 fail_if_no_path
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
# The mounted map with a record left behind that says to switch queueing on again: the flush the
# policy runs puts it back (from its lock step), and the policy must come last: queueing stays off.
one_round "without multipathd" "$3" "$4" "multipath -t" leave-record
t_is "without multipathd: no undo record is left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""
t_done
