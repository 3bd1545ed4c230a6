#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# G1: the Debian package in the full guest, maintainer scripts and all. The
# guest gets no mpath-flush, only the .deb (install=deb). apt installs it: the
# shutdown pair is enabled (not started), the templates are static, the preset
# enables the pair, /run/mpath-flush exists (tmpfiles), udev reads the rule
# and, after "udevadm control --reload", runs it (deleting both paths of a map
# starts mpath-flush-lastpath@WWID); systemctl start mpath-flush@MAP removes an
# unused map. Purge with the shutdown pair active: it stops neither (no map is
# flushed, queueing stays) and leaves nothing behind (no unit, no enablement
# symlink, no rule, no file). Installed again, the system powers off through the
# enabled pair: the host (G1-package.host) checks that each map got
# mpath-flush's journal line at shutdown, within B4's bound.
# mpf-lab: mode=full install=deb timeout=420 cpu=heavy
. /usr/lib/mpf-lab/lib.sh

deb=$(ls /usr/lib/mpf-lab/packages/mpath-flush_*.deb)
export DEBIAN_FRONTEND=noninteractive
pair="mpath-flush-queueing.service mpath-flush-shutdown.service"
unit() { systemd-escape --template=mpath-flush@.service "$1"; }
# Every file and symlink named after us, outside the lab's own folders.
leftovers() {
        find / -xdev \( -path /usr/lib/mpf-lab -o -path /var/lib/mpf-lab \) -prune \
                -o -name '*mpath-flush*' -print 2>/dev/null
}
# What the next boot does with the enabled units: load them, start sysinit.target.
next_boot() { systemctl daemon-reload && systemctl start sysinit.target; }

t_check "the system finished booting" systemctl is-system-running --wait
t_diag "package: ${deb##*/}"
t_is "nothing of mpath-flush is in the guest before the package" "$(leftovers)" ""

# Install.
lab_run r apt-get install -y --no-install-recommends "$deb"
printf '%s\n%s\n' "$r_out" "$r_err"
t_is "apt-get install ./${deb##*/} exits 0 (${r_ms} ms)" "$r_rc" 0
t_is "dpkg says installed" "$(dpkg-query -W -f='${Status}' mpath-flush 2>&1)" "install ok installed"
t_check "mpath-flush runs" mpath-flush --version
for u in $pair; do
        t_is "$u is enabled" "$(systemctl is-enabled "$u" 2>&1)" enabled
        t_check "$u is wanted by sysinit.target" test -L "/etc/systemd/system/sysinit.target.wants/$u"
        t_is "$u was not started by the install" "$(systemctl is-active "$u" 2>&1)" inactive
done
for u in mpath-flush@.service mpath-flush-lastpath@.service; do
        t_is "$u is static (a template started on demand)" "$(systemctl is-enabled "$u" 2>&1)" static
done
t_is "tmpfiles made /run/mpath-flush, mode 700" "$(stat -c %a /run/mpath-flush 2>&1)" 700
# Where presets rule (Fedora: "disable *" for everything not named), ours
# enables the pair.
systemctl disable --quiet $pair
mkdir -p /etc/systemd/system-preset
t_check "a disable-everything preset is in place" \
        sh -c "printf 'disable *\n' > /etc/systemd/system-preset/99-g1-disable-all.preset"
# Self-check: the preset is in force (an enabled unit of no package's preset is disabled by it).
printf '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' \
        > /etc/systemd/system/g1-probe.service
systemctl enable --quiet g1-probe.service
t_is "self-check: the probe unit is enabled before the preset" "$(systemctl is-enabled g1-probe.service 2>&1)" enabled
systemctl preset --quiet g1-probe.service
t_is "self-check: the disable-everything preset disables an enabled unit" \
        "$(systemctl is-enabled g1-probe.service 2>&1)" disabled
systemctl disable --quiet g1-probe.service
rm -f /etc/systemd/system/g1-probe.service
systemctl daemon-reload
systemctl preset --quiet $pair
for u in $pair; do
        t_is "under a disable-everything preset, the package's preset enables $u" "$(systemctl is-enabled "$u" 2>&1)" enabled
done
rm /etc/systemd/system-preset/99-g1-disable-all.preset
t_is "udevadm reads the package's rule file" \
        "$(udevadm test --action=add /sys/class/mem/null 2>&1 | grep -c 'Reading rules file: .*/69-mpath-flush.rules')" 1
t_check "udevadm control --reload" udevadm control --reload
t_check "next boot: sysinit.target starts the enabled pair" next_boot
for u in $pair; do
        t_is "$u is active" "$(systemctl is-active "$u" 2>&1)" active
done

# Three maps: one flushed through the unit, one loses both paths (the rule
# starts the lastpath unit), one stays through the purge.
lab_san 3
t_check "three maps are created" lab_maps_create 3
set -- $(lab_maps)
m1=$1 m2=$2 m3=$3
lab_run r systemctl start "$(unit "$m1")"
t_is "systemctl start mpath-flush@$m1 exits 0" "$r_rc" 0
t_check_fails "$m1 is gone" lab_map_exists "$m1"
t_like "the journal says $m1 was removed" "$(journalctl -b -u "$(unit "$m1")" -o cat --no-pager)" "$m1: .*removed"

wwid=$(dmsetup info -c --noheadings -o uuid "$m2"); wwid=${wwid#mpath-}
lu=mpath-flush-lastpath@$wwid.service
for p in $(lab_map_paths "$m2"); do lab_path_delete "$p"; done
# The journal, not systemctl show: a finished oneshot instance is unloaded
# within a second, and with it its timestamps.
ran() { journalctl -b -q -u "$lu" -o cat --no-pager | grep -q '^Finished \|: Deactivated successfully\|: Failed with'; }
i=0
while ! ran && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
t_check "udev ran the package's rule: $lu ran after both paths of $m2 were deleted" ran
journalctl -b -u "$lu" -o cat --no-pager
lab_wait_gone "$m2" 30
t_check_fails "$m2 is gone" lab_map_exists "$m2"

# Purge, with the shutdown pair active: stopping it would flush $m3 and turn
# its queueing off; the maintainer scripts must not.
t_check "$m3 queues before the purge" lab_map_queueing "$m3"
lab_run r apt-get purge -y mpath-flush
printf '%s\n%s\n' "$r_out" "$r_err"
t_is "apt-get purge mpath-flush exits 0 (${r_ms} ms)" "$r_rc" 0
t_check_fails "dpkg knows no mpath-flush any more" sh -c "dpkg-query -W -f='\${Status}' mpath-flush 2>/dev/null | grep -q installed"
t_check "the purge flushed nothing: $m3 is still there" lab_map_exists "$m3"
t_check "the purge left queueing alone: $m3 still queues" lab_map_queueing "$m3"
t_is "the purge stopped neither unit of the pair" "$(systemctl is-active $pair | sort -u)" active
t_is "no file or symlink named mpath-flush is left (units, wants symlinks, rule, man pages, state)" "$(leftovers)" ""
t_is "systemd knows no mpath-flush unit file" "$(systemctl list-unit-files --no-legend 'mpath-flush*' 2>&1)" ""

# Installed again; power off through the enabled pair with an unused and a
# mounted map.
lab_run r apt-get install -y --no-install-recommends "$deb"
t_is "apt-get install again exits 0" "$r_rc" 0
t_check "next boot: sysinit.target starts the enabled pair" next_boot
t_check "$m1 is made again" lab_maps_create 2
mkfs.ext4 -q "/dev/mapper/$m3" && mkdir -p /mnt/g1 && mount "/dev/mapper/$m3" /mnt/g1
t_check "$m3 is mounted" mountpoint -q /mnt/g1
lab_maps > "$MPF_LAB_OUT/g1-maps"
t_diag "at poweroff: $(lab_maps | tr '\n' ' ')($m3 mounted on /mnt/g1)"
echo "MPF-G1: poweroff requested" > /dev/kmsg
t_done
