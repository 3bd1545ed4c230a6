#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# B5: systemd-analyze verify on every unit mpath-flush installs: no output, exit 0.
# Templates are verified through an instance (systemd-analyze verify loads
# NAME@x.service from the template). The lab has no man-db, so verify runs with
# --man=no and the scenario checks itself that every Documentation=man: page
# is installed. The udev rule is checked with udevadm test on a real path device.
# mpf-lab: mode=full timeout=300
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
dir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
[ -n "$dir" ] || dir=/lib/systemd/system
n=0
for f in "$dir"/mpath-flush*; do
        u=${f##*/}
        case $u in *@.service) u=${u%@.service}@x.service ;; esac
        n=$((n + 1))
        lab_run r systemd-analyze verify --man=no "$u"
        t_is "systemd-analyze verify $u exits 0" "$r_rc" 0
        t_is "systemd-analyze verify $u prints nothing" "$r_out$r_err" ""
        for d in $(systemctl show -p Documentation --value "$u" | tr -d '"'); do
                case $d in
                man:*)
                        page=${d#man:}; sec=${page##*\(}; sec=${sec%\)}; page=${page%\(*}
                        t_check "$u: its page $d is installed" \
                                sh -c 'ls /usr/share/man/man$1/$2.$1* /usr/local/share/man/man$1/$2.$1* 2>/dev/null | grep -q .' sh "$sec" "$page" ;;
                *) t_fail "$u: Documentation $d is a man: page" ;;
                esac
        done
done
t_is "four units are installed" "$n" 4

# The udev rule (systemd 252 has no udevadm verify). udevadm test on a real path
# device: udev reads our rule without complaint, and an add event runs nothing of
# ours. udevadm test does not replay a remove event from the udev database, so the
# remove is a real one: a path device deleted in the kernel must start
# mpath-flush-lastpath@WWID.service for its WWID.
lab_san 1
t_check "a two-path map is created" lab_maps_create 1
map=$(lab_map_first)
path=$(lab_map_paths "$map" | tail -n 1)
wwid=$(udevadm info -q property "/dev/$path" | sed -n 's/^ID_SERIAL=//p')
t_like "$path is a multipath path with a WWID" \
        "$(udevadm info -q property "/dev/$path" | grep -c '^DM_MULTIPATH_DEVICE_PATH=1$') $wwid" '^1 [0-9A-Za-z_.:]+$'
rule=69-mpath-flush.rules
udevadm test --action=add "/sys/block/$path" > "$MPF_LAB_OUT/udevadm-test-add.txt" 2>&1
t_check "udevadm test reads $rule" grep -q "Reading rules file: .*/$rule\$" "$MPF_LAB_OUT/udevadm-test-add.txt"
t_is "udevadm test: no complaint about $rule" "$(grep -F "$rule:" "$MPF_LAB_OUT/udevadm-test-add.txt")" ""
t_is "add of path $path: the rule runs nothing of ours" \
        "$(grep -E '^(run: |SYSTEMD_WANTS=)' "$MPF_LAB_OUT/udevadm-test-add.txt" | grep mpath-flush)" ""
unit=mpath-flush-lastpath@$wwid.service
# Ran: its start time, or (a finished instance is unloaded, and its start time with it)
# systemd's lines about it in the journal.
ran() {
        [ "$(systemctl show -p InactiveExitTimestampMonotonic --value "$unit")" != 0 ] ||
                journalctl -q -b -u "$unit" -o cat | grep -q .
}
t_check_fails "$unit has not run yet" ran
lab_path_delete "$path"
i=0
while ! ran && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
t_check "a real remove of path $path starts $unit" ran
t_done
