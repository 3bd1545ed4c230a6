#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# F6: the full guest with open-iscsi, lvm2 (blk-availability), ifupdown (a
# network that comes after local-fs.target, as on a default Debian install) and
# our shutdown units enabled from the first boot (header enable=): no ordering
# cycle at boot (journal), in "systemd-analyze verify default.target", nor at
# poweroff (F6-ordering.host reads the journal of the whole run). Self-check: the
# old ordering of mpath-flush-shutdown.service (After=blk-availability.service)
# makes verify report the cycle.
# mpf-lab: mode=full timeout=240 enable=mpath-flush-queueing.service,mpath-flush-shutdown.service
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
for u in mpath-flush-queueing.service mpath-flush-shutdown.service blk-availability.service \
         iscsid.socket networking.service; do
        t_is "$u is active" "$(systemctl is-active "$u")" active
done
t_is "iscsid.service and open-iscsi.service are loaded" \
        "$(systemctl show -p LoadState --value iscsid.service open-iscsi.service | sort -u)" loaded
j=$(journalctl -b -o cat | grep -i "ordering cycle" || true)
t_is "no ordering cycle in the boot journal" "$j" ""

# iscsid and open-iscsi in the transaction too (socket-activated, and skipped
# without nodes, at boot).
v=$(systemd-analyze verify default.target iscsid.service open-iscsi.service 2>&1)
printf '%s\n' "$v"
t_is "systemd-analyze verify finds no ordering cycle" "$(printf '%s\n' "$v" | grep -i 'ordering cycle')" ""

# Self-check: with the old After=blk-availability.service the same verify finds the cycle.
sed 's/^Before=blk-availability.service/After=blk-availability.service/' \
        /usr/local/lib/systemd/system/mpath-flush-shutdown.service > /tmp/old.service 2>/dev/null ||
        sed 's/^Before=blk-availability.service/After=blk-availability.service/' \
        "$(systemctl show -p FragmentPath --value mpath-flush-shutdown.service)" > /tmp/old.service
mkdir -p /tmp/f6old && cp /tmp/old.service /tmp/f6old/mpath-flush-shutdown.service
grep -n blk-availability /tmp/f6old/mpath-flush-shutdown.service
v=$(SYSTEMD_UNIT_PATH=/tmp/f6old: systemd-analyze verify default.target iscsid.service open-iscsi.service \
        mpath-flush-shutdown.service 2>&1)

t_like "self-check: with After=blk-availability.service verify finds the cycle" "$v" "[Oo]rdering cycle"
logger -t mpf-f6 "MPF-F6: poweroff requested"
t_done
