#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# B2: map names with characters systemd escapes ("-", "+", a leading ".") work
# end to end: multipath aliases set in a conf file, then
# systemctl start "$(systemd-escape --template=mpath-flush@.service NAME)" removes
# the right map, status and journal name it correctly, a busy one fails with
# its real name, an unescaped instance is refused without touching any map, and
# the last-path rule (instance = WWID, the script resolves the name) removes an
# aliased map too.
# mpf-lab: mode=full timeout=400
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
lab_san 4
t_check "four maps are created" lab_maps_create 4
aliases="my-map.x vol+2-a_b .dot-lead last-path-map"
mkdir -p /etc/multipath/conf.d
{
        echo "multipaths {"
        set -- $aliases
        for m in $(lab_maps); do
                wwid=$(dmsetup info -c --noheadings -o uuid "$m" | sed 's/^mpath-//')
                printf '    multipath {\n        wwid %s\n        alias "%s"\n    }\n' "$wwid" "$1"
                shift
        done
        echo "}"
} > /etc/multipath/conf.d/b2.conf
cat /etc/multipath/conf.d/b2.conf
multipathd reconfigure
i=0
until [ "$(lab_maps | tr '\n' ' ')" = ".dot-lead last-path-map my-map.x vol+2-a_b " ] || [ $i -ge 300 ]; do
        sleep 0.1; i=$((i + 1))
done
lab_settle
t_is "the maps carry the aliases" "$(lab_maps | tr '\n' ' ')" ".dot-lead last-path-map my-map.x vol+2-a_b "

unit() { systemd-escape --template=mpath-flush@.service "$1"; }
t_is "my-map.x escapes to my\\x2dmap.x" "$(unit my-map.x)" 'mpath-flush@my\x2dmap.x.service'

# An unescaped "-" arrives as "/": a usage error, no map touched.
lab_run r systemctl start mpath-flush@my-map.x.service
t_check_fails "the unescaped instance mpath-flush@my-map.x fails" test "$r_rc" -eq 0
j=$(journalctl -b -u mpath-flush@my-map.x.service -o cat)
printf '%s\n' "$j"
t_like "... because the helper got my/map.x (usage error)" "$j" "my/map\\.x|status=2"
t_check "my-map.x is still there" lab_map_exists my-map.x

for m in my-map.x vol+2-a_b .dot-lead; do
        u=$(unit "$m")
        t_diag "$m -> $u"
        lab_run r systemctl start "$u"
        t_is "systemctl start $u succeeds" "$r_rc" 0
        t_check_fails "$m is gone" lab_map_exists "$m"
        t_like "the journal names $m as removed" "$(journalctl -b -u "$u" -o cat)" "^$(printf '%s' "$m" | sed 's/[.+]/\\&/g'): .*removed"
        t_like "the unit's description shows the real name" "$(systemctl show -p Description --value "$u")" "map $(printf '%s' "$m" | sed 's/[.+]/\\&/g')\$"
done
t_check "last-path-map is untouched" lab_map_exists last-path-map

# Busy, with an escaped name: the failure names the real map and mount.
mkfs.ext4 -q /dev/mapper/last-path-map && mkdir -p /mnt/l && mount /dev/mapper/last-path-map /mnt/l
u=$(unit last-path-map)
lab_run r systemctl start "$u"
t_check_fails "$u (mounted) fails" test "$r_rc" -eq 0
t_like "systemctl status names last-path-map and /mnt/l" "$(systemctl status --no-pager -l "$u")" "last-path-map: .*busy.*/mnt/l"
umount /mnt/l

# The last-path rule with an aliased map, multipathd stopped so only our rule acts.
t_check "multipathd stops" lab_mpathd_stop
wwid=$(dmsetup info -c --noheadings -o uuid last-path-map | sed 's/^mpath-//')
s=$(lab_ms)
for p in $(lab_map_paths last-path-map); do lab_path_delete "$p"; done
lab_wait_gone last-path-map 30
e=$(($(lab_ms) - s))
t_check_fails "after its paths were deleted, last-path-map is gone" lab_map_exists last-path-map
t_diag "gone after $e ms"
# The map goes before the helper writes its result line: wait for the unit.
i=0
while [ "$(systemctl is-active "mpath-flush-lastpath@$wwid.service")" = activating ] && [ $i -lt 300 ]; do
        sleep 0.1; i=$((i + 1))
done
j=$(journalctl -b -u "mpath-flush-lastpath@$wwid.service" -o cat)
printf '%s\n' "$j"
t_like "mpath-flush-lastpath@$wwid removed last-path-map" "$j" "last-path-map: .*removed"
t_done
