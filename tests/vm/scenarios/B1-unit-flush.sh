#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# B1: systemctl start mpath-flush@MAP removes an unused map; on a mounted map,
# and on a map a process holds open, the unit fails and systemctl status and the
# journal say why (the mount point, the opener). Also records the unit's
# systemd-analyze security exposure (the sandbox must leave the helper able to
# see mounts and openers: the busy cases prove it), and the STATUS= summary
# that --all sends, and that a run which logs and exits at once keeps its line
# under its unit.
# mpf-lab: mode=full timeout=360
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
lab_san 3
t_check "three maps are created" lab_maps_create 3
set -- $(lab_maps)
m1=$1 m2=$2 m3=$3

unit() { systemd-escape --template=mpath-flush@.service "$1"; }

# Unused map.
lab_run r systemctl start "$(unit "$m1")"
t_is "systemctl start mpath-flush@$m1 succeeds" "$r_rc" 0
t_check_fails "$m1 is gone" lab_map_exists "$m1"
j=$(journalctl -b -u "$(unit "$m1")" -o cat --no-pager)
printf '%s\n' "$j"
t_like "the journal says $m1 was removed" "$j" "$m1: .*removed"
t_is "the unit is inactive (not failed)" "$(systemctl is-active "$(unit "$m1")")" inactive

# Mounted map.
mkfs.ext4 -q "/dev/mapper/$m2" && mkdir -p /mnt/b && mount "/dev/mapper/$m2" /mnt/b
lab_run r systemctl start "$(unit "$m2")"
t_check_fails "systemctl start mpath-flush@$m2 (mounted) fails" test "$r_rc" -eq 0
t_is "the unit is failed" "$(systemctl is-failed "$(unit "$m2")")" failed
t_check "$m2 still exists" lab_map_exists "$m2"
t_check "$m2 still queues (queueing restored)" lab_map_queueing "$m2"
st=$(systemctl status --no-pager -l -n 20 "$(unit "$m2")")
printf '%s\n' "$st"
t_like "systemctl status shows the exit status" "$st" "status=4/"
t_like "systemctl status names the mount point" "$st" "/mnt/b"
j=$(journalctl -b -u "$(unit "$m2")" -o cat --no-pager)
t_like "the journal says busy" "$j" "$m2: .*busy"
t_like "the journal names the mount point" "$j" "/mnt/b"
# Once: the helper's own sandbox mount namespace is a copy of the host's and is not named.
t_is "the busy line names the mount once" \
        "$(printf '%s\n' "$j" | grep -m 1 "$m2: .*busy" | grep -o '/mnt/b' | wc -l)" 1
t_check "mpath-flush's journal entry carries MPATH_FLUSH_RESULT=busy" \
        sh -c "journalctl -b -u '$(unit "$m2")' MPATH_FLUSH_RESULT=busy -o cat | grep -q ."
umount /mnt/b

# A process holds the map open.
sleep 600 < "/dev/mapper/$m3" &
holder=$!
sleep 0.5
lab_run r systemctl start "$(unit "$m3")"
t_check_fails "systemctl start mpath-flush@$m3 (held open) fails" test "$r_rc" -eq 0
j=$(journalctl -b -u "$(unit "$m3")" -o cat --no-pager)
printf '%s\n' "$j"
t_like "the journal names the opener's pid" "$j" "$holder"
t_like "the journal names the opener's command" "$j" "sleep"
kill "$holder"; wait "$holder" 2>/dev/null
lab_run r systemctl start "$(unit "$m3")"
t_is "once closed, the unit removes $m3" "$r_rc" 0
t_check_fails "$m3 is gone" lab_map_exists "$m3"

# journald learns a record's unit from /proc/PID when it reads it: a helper that logs and
# exits at once (here: no such map) must still have its line under its unit, every time.
n=0
for i in $(seq 20); do
        systemctl start "$(unit "nosuch$i")" 2> /dev/null
        journalctl -b -u "$(unit "nosuch$i")" SYSLOG_IDENTIFIER=mpath-flush -o cat --no-pager |
                grep -q "nosuch$i" && n=$((n + 1))
done
t_is "20 runs that fail at once: each one's error is in journalctl -u" "$n" 20

# --all in a unit reports its progress with sd_notify STATUS=; systemd keeps the
# last one, the summary, for systemctl status.
t_check "multipath re-creates $m1 and $m3" lab_maps_create 3
lab_run r systemd-run --unit=mpf-all-status -p Type=oneshot -p RemainAfterExit=yes -p NotifyAccess=all \
        mpath-flush --all
t_is "mpath-flush --all in a transient unit exits 0" "$r_rc" 0
t_is "the unit's status line is the helper's summary" \
        "$(systemctl show -p StatusText --value mpf-all-status.service)" "Done: 3 of 3 multipath maps removed"

# The sandbox, as systemd rates it.
for u in mpath-flush@x.service mpath-flush-lastpath@x.service mpath-flush-shutdown.service mpath-flush-queueing.service; do
        sec=$(systemd-analyze security --no-pager "$u" 2>&1)
        score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        t_diag "systemd-analyze security $u: ${score:-?}"
        printf '%s\n' "$sec" | grep -v '^  ✓' | head -n 40
        case $u in
        mpath-flush@x.service | mpath-flush-lastpath@x.service | mpath-flush-shutdown.service)
                t_check "$u exposure $score is at most 5.0" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 5.0) }' ;;
        esac
done
t_done
