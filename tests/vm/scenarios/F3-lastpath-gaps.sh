#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# F3: without multipathd, the two paths of an unused map are deleted 10, 30 and
# 100 ms apart (scsi_debug; the deletes start that far apart, each runs in the
# background), twice each, and 300, 600 and 1000 ms apart once: the first
# removal starts the lastpath unit, which may find a path left; the second
# removal may arrive while that instance runs (systemd then merges its start
# into the running job). The pathless map must be removed every time, within
# 10 s.
# Then, deterministically, a removal that arrives while an instance is still
# active: a drop-in makes the instance linger 2 s after the helper (ExecStartPost=
# sleep, as a loaded machine would); the second path is deleted once the
# instance has said "not its last path". The rule restarts the unit, so systemd
# runs it again and the map is removed; with "start" (the negative control
# below) the request is merged into the running job and the map stays.
# F5 in the same boot: one LUN's ID_SERIAL (multipath's WWID) is set by a udev
# rule to a value with characters systemd escapes ("-", "+"); its map is removed
# the same way, by the unit instance with the escaped name.
# Negative control (not in the suite): the rule as it was, "systemctl start":
#   tests/vm/run --set F3_START=1 --name F3-start tests/vm/scenarios/F3-lastpath-gaps.sh
# mpf-lab: mode=full timeout=300 cpu=heavy
. /usr/lib/mpf-lab/lib.sh

t_check "the system finished booting" systemctl is-system-running --wait
# F5: the eleventh LUN (H:0:0:10) gets a WWID that needs escaping in a unit name.
cat > /etc/udev/rules.d/61-mpf-f5.rules <<'RULE'
ACTION!="remove", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", KERNELS=="*:0:0:10", ENV{ID_SERIAL}=="?*", ENV{ID_SERIAL}="F5-lun+x_$env{ID_SERIAL}"
RULE
if [ "${F3_START:-0}" = 1 ]; then
        for f in /etc/udev/rules.d /usr/local/lib/udev/rules.d /usr/lib/udev/rules.d /lib/udev/rules.d; do
                [ -e "$f/69-mpath-flush.rules" ] && sed -i 's/--no-block restart/--no-block start/' "$f/69-mpath-flush.rules"
        done
        t_diag "negative control: the rule starts the unit instead of restarting it"
fi
udevadm control --reload
lab_mpathd_running && lab_mpathd_stop
# Debian's rules for the paths cost a minute of emulated CPU here (11 maps); these checks
# are about the last-path rule and unit, which light rules keep (lib.sh, lab_udev_light).
lab_udev_light
lab_setup 11
t_check "multipathd does not run" lab_mpathd_stop

f5=
for m in $(lab_maps); do
        case $(dmsetup info -c --noheadings -o uuid "$m") in mpath-F5-lun+x_*) f5=$m ;; esac
done
t_check "F5: a map has the crafted WWID" test -n "$f5"
f5wwid=$(dmsetup info -c --noheadings -o uuid "$f5" | sed 's/^mpath-//')
f5unit=$(systemd-escape --template=mpath-flush-lastpath@.service -- "$f5wwid")
t_diag "F5: map $f5, WWID $f5wwid, unit $f5unit"
t_like "F5: the unit name is escaped" "$f5unit" '\\x2d.*\\x2b'

# No lastpath unit is starting or running any more (bounded).
units_idle() {
        _i=0
        while [ $_i -lt 300 ]; do
                [ -z "$(systemctl list-units --no-legend --state=activating 'mpath-flush-lastpath@*')" ] &&
                        [ -z "$(systemctl list-jobs --no-legend 'mpath-flush-lastpath@*')" ] && return 0
                sleep 0.1; _i=$((_i + 1))
        done
        return 1
}
# delete_apart MAP GAP_MS: start deleting its two paths GAP_MS apart (a delete takes
# a few hundred ms under emulation, so each runs in the background), wait until the
# map is gone
delete_apart() {
        set -- "$1" "$2" $(lab_map_paths "$1")
        [ $# -eq 4 ] || { t_fail "$1 has two paths" "paths: $*"; return 0; }
        _s=$(lab_ms)
        lab_path_delete "$3" &
        sleep "$(printf '%d.%03d' $(($2 / 1000)) $(($2 % 1000)))"
        _g=$(($(lab_ms) - _s))
        lab_path_delete "$4" &
        wait
        lab_wait_gone "$1" 30
        _e=$(($(lab_ms) - _s))
        t_check_fails "$1: paths $3, $4 deleted $2 ms apart (measured $_g ms): the map is gone" lab_map_exists "$1"
        t_check "$1: ... within 10 s ($_e ms)" test "$_e" -le 10000
        units_idle
}

set -- $(lab_maps | grep -vx "$f5")
for gap in 10 30 100 10 30 100 300 600 1000; do
        delete_apart "$1" "$gap"
        shift
done
delete_apart "$f5" 30
t_check "F5: the escaped unit removed the map" \
        lab_wait_journal "$f5unit" "$f5: .*flush_on_last_del is unused .*: removed: "
journalctl -b -u "$f5unit" -o cat --no-pager
# A removal while the instance is still active (it lingers in ExecStartPost=).
set -- $(lab_maps)
m=$1
mkdir -p /run/systemd/system/mpath-flush-lastpath@.service.d
printf '[Service]\nExecStartPost=/bin/sleep 2\n' > /run/systemd/system/mpath-flush-lastpath@.service.d/f3-linger.conf
systemctl daemon-reload
unit=$(systemd-escape --template=mpath-flush-lastpath@.service -- \
        "$(dmsetup info -c --noheadings -o uuid "$m" | sed 's/^mpath-//')")
set -- $(lab_map_paths "$m")
lab_path_delete "$1"
t_check "$m: the first instance finds $2 left" lab_wait_journal "$unit" "$m: .*not its last path" 20
t_is "$m: ... and is still active (lingering)" "$(systemctl is-active "$unit")" activating
s=$(lab_ms)
lab_path_delete "$2"
lab_wait_gone "$m" 30
e=$(($(lab_ms) - s))
t_check_fails "$m: the second path deleted while the instance was active: the map is gone" lab_map_exists "$m"
t_check "$m: ... within 10 s ($e ms)" test "$e" -le 10000
units_idle
rm -f /run/systemd/system/mpath-flush-lastpath@.service.d/f3-linger.conf
systemctl daemon-reload

# How often an instance found a path left and then, looking again, the map without
# paths (a removal that arrived while it ran).
journalctl -b -u 'mpath-flush-lastpath@*' -o short-monotonic --no-pager | grep mpath-flush | tail -n 60
n=$(journalctl -b -u 'mpath-flush-lastpath@*' -o json --no-pager |
    jq -r 'select(.MESSAGE != null) | "\(._PID) \(.MESSAGE)"' |
    awk '/not its last path/ { seen[$1] = 1 } /flush_on_last_del/ && seen[$1] { n++ } END { print n + 0 }')
t_diag "instances that found a path left, looked again and acted: $n"
t_done
