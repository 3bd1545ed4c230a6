#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# B5: systemd-analyze verify on every unit mpath-flush installs: no output, exit 0.
# Templates are verified through an instance (systemd-analyze verify loads
# NAME@x.service from the template). The lab has no man-db, so verify runs with
# --man=no and the scenario checks itself that every Documentation=man: page
# is installed.
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
lab_run r udevadm verify /lib/udev/rules.d/69-mpath-flush.rules
if [ "$r_rc" -eq 0 ] || ! printf '%s' "$r_err" | grep -q 'Unknown command'; then
        t_is "udevadm verify 69-mpath-flush.rules exits 0" "$r_rc" 0
else
        t_skip "udevadm verify 69-mpath-flush.rules" "this udevadm has no verify command"
fi
t_done
