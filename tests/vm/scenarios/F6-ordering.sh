#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# F6: the full guest with open-iscsi, lvm2 (blk-availability), ifupdown (a
# network that comes after local-fs.target, as on a default Debian install), the
# root file system in fstab (so local-fs-pre.target is part of the boot, through
# systemd-remount-fs.service) and our shutdown units enabled from the first boot
# (header enable=): no ordering cycle at boot (journal), in "systemd-analyze
# verify default.target", nor at poweroff (F6-ordering.host reads the journal of
# the whole run). Self-check: the old ordering of mpath-flush-shutdown.service
# (After=blk-availability.service) makes the same verify report the cycle, which
# systemd breaks by dropping a job (ours or blk-availability's).
# mpf-lab: mode=full timeout=240 enable=mpath-flush-queueing.service,mpath-flush-shutdown.service
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
for u in mpath-flush-queueing.service mpath-flush-shutdown.service blk-availability.service \
         iscsid.socket networking.service; do
        t_is "$u is active" "$(systemctl is-active "$u")" active
done
t_is "iscsid.service and open-iscsi.service are loaded" \
        "$(systemctl show -p LoadState --value iscsid.service open-iscsi.service | grep . | sort -u)" loaded
t_is "local-fs-pre.target was part of the boot" "$(systemctl is-active local-fs-pre.target)" active
j=$(journalctl -b -o cat | grep -i "ordering cycle" || true)
t_is "no ordering cycle in the boot journal" "$j" ""

verify() { systemd-analyze verify --man=no --generators=yes default.target 2>&1; }
v=$(verify)
printf '%s\n' "$v"
t_is "systemd-analyze verify default.target finds no ordering cycle" "$(printf '%s\n' "$v" | grep -i 'ordering cycle')" ""

# Self-check: the old After=blk-availability.service, as an override in /etc.
sed 's/^Before=blk-availability.service/After=blk-availability.service/' \
        "$(systemctl show -p FragmentPath --value mpath-flush-shutdown.service)" \
        > /etc/systemd/system/mpath-flush-shutdown.service
v=$(verify)
rm -f /etc/systemd/system/mpath-flush-shutdown.service
t_like "self-check: with After=blk-availability.service verify finds the cycle" "$v" \
        "Job .*/start deleted to break ordering cycle starting with .*"
logger -t mpf-f6 "MPF-F6: poweroff requested"
t_done
