# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=sh
#
# Helpers for lab scenarios. A scenario is a plain POSIX shell script run in the
# guest as root; it starts with
#
#       . /usr/lib/mpf-lab/lib.sh
#
# and ends with `t_done`. Header comments the host runner reads (all optional):
#
#       # mpf-lab: mode=fast|full timeout=SECONDS mem=MIB cpu=heavy (see tests/vm/run)
#
# TAP: every check writes one TAP line to the console and to $MPF_LAB_OUT/tap;
# the host numbers them and reports the scenario failed if any check failed, the
# script exited non-zero, it ran past its timeout, the guest kernel logged an oops
# or warning, or the guest did not power off.
#
#   t_ok DESC                 a passing check
#   t_fail DESC [WHY]         a failing check
#   t_check DESC CMD...       run CMD (output to the log); pass if it exits 0
#   t_check_fails DESC CMD... pass if CMD exits non-zero
#   t_is DESC GOT WANT        pass if the strings are equal
#   t_like DESC TEXT ERE      pass if TEXT matches the extended regex
#   t_skip DESC WHY           a skipped check (counts as a skip, never a pass)
#   t_diag TEXT               a comment in the TAP stream
#   t_done                    end the scenario: exit 1 if any check failed or none ran
#
# The simulated SAN and the daemons:
#   lab_setup LUNS [multipathd]
#                             the usual start: udevd, LUNS two-path LUNs, multipathd if asked,
#                             the maps (each step a TAP check); $map is the first map
#   lab_udev_start            start systemd-udevd, trigger the block devices, settle (fast guest)
#   lab_udev_stop
#   lab_udev_light            before lab_setup/lab_san: mask sg3-utils-udev's path rules for this
#                             guest (a big SAN's set-up in a third of the time; see below)
#   lab_settle                udevadm settle (no-op without udevd)
#   lab_san [LUNS]            scsi_debug: two paths (two hosts) to each of LUNS LUNs (default 1)
#   lab_qemu_san              use the qemu disks the header asked for (disks=N): two paths each
#   lab_mpathd_start          start multipathd (fast guest: as a daemon; full: systemctl)
#   lab_mpathd_stop
#   lab_mpathd_running        exit 0 if multipathd answers
#   lab_mpathd_maps_have DESC NAME / lab_mpathd_maps_lack DESC ERE
#                             a check that multipathd answers "show maps" and lists NAME /
#                             lists no map matching ERE (a dead daemon fails both)
#   lab_maps_create [N]       create the multipath maps (multipath, or multipathd reconfigure)
#                             and wait until N maps exist (default: as many as LUNs)
#   lab_maps                  names of all multipath maps, one a line
#   lab_map_first             the first map's name
#   lab_map_dev NAME          dm-N
#   lab_map_devt NAME         MAJ:MIN
#   lab_map_paths NAME        its path devices (sdX), one a line
#   lab_map_exists NAME       exit 0 if the map exists
#   lab_map_queueing NAME     exit 0 if its table has queue_if_no_path
#   lab_map_suspended NAME    exit 0 if it is suspended
#   lab_map_opencount NAME
#   lab_wait_gone NAME [SECS] wait (udev events, bounded) until the map is gone
#   lab_partition NAME [K]    write a DOS label with K (default 2) 16 MiB partitions and
#                             make sure the kpartx maps NAME-part1..K exist
#   lab_path_offline SDX / lab_path_online SDX / lab_path_delete SDX
#   lab_wait_journal UNIT ERE [SECS]
#                             wait (bounded, default 30 s) until UNIT's journal of this boot
#                             has a line matching ERE (a unit that ran may be unloaded since)
#   lab_ms                    monotonic milliseconds (for elapsed times)
#   lab_run VAR CMD...        run CMD, put its exit status in VAR_rc, its stdout in VAR_out,
#                             its stderr in VAR_err and its wall time (ms) in VAR_ms; when CMD
#                             has --json, -j or --json-lines among its words, its stdout is
#                             also kept for the host's schema check (lab_json_path)
#   lab_json_path NAME [lines]
#                             a new file name under $MPF_LAB_OUT/json for JSON the helper
#                             printed (NAME.json, or NAME.jsonl for --json-lines output); after
#                             the guest is gone the runner validates every such file against
#                             doc/mpath-flush.schema.json, and one invalid document fails the
#                             scenario

MPF_LAB_OUT=${MPF_LAB_OUT:-/tmp/mpf-lab-out}
mkdir -p "$MPF_LAB_OUT" "$MPF_LAB_OUT/json"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/mpf-lab/bin
_t_pass=0
_t_failed=0
_t_skipped=0

_t_line() {
        printf '%s\n' "$*" >> "$MPF_LAB_OUT/tap"
        # the guest's uptime in the log (not in the TAP stream): where a scenario's time goes
        read -r _t_up _t_idle < /proc/uptime
        printf 'TAP [%s]: %s\n' "$_t_up" "$*"
}
t_ok() { _t_pass=$((_t_pass + 1)); _t_line "ok - $1"; }
t_fail() {
        _t_failed=$((_t_failed + 1))
        _t_line "not ok - $1"
        [ -n "${2:-}" ] && _t_line "# $2"
        return 0
}
t_skip() { _t_skipped=$((_t_skipped + 1)); _t_line "ok - $1 # SKIP ${2:-}"; }
t_diag() { _t_line "# $*"; }
t_check() {
        _d=$1; shift
        echo "+ $*"
        if "$@"; then t_ok "$_d"; else t_fail "$_d" "command failed (exit $?): $*"; fi
}
t_check_fails() {
        _d=$1; shift
        echo "+ $*"
        if "$@"; then t_fail "$_d" "command succeeded but should not have: $*"; else t_ok "$_d"; fi
}
t_is() {
        if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1" "got '$2', want '$3'"; fi
}
t_like() {
        if printf '%s\n' "$2" | grep -Eq -- "$3"; then t_ok "$1"; else t_fail "$1" "'$2' does not match /$3/"; fi
}
t_done() {
        t_diag "passed $_t_pass, failed $_t_failed, skipped $_t_skipped"
        [ "$_t_failed" -eq 0 ] && [ $((_t_pass + _t_failed)) -gt 0 ]
        exit $?
}

lab_wait_journal() {
        _i=0; _n=$((${3:-30} * 10))
        until journalctl -b -u "$1" -o cat --no-pager 2>/dev/null | grep -Eq -- "$2"; do
                [ $_i -ge $_n ] && return 1
                sleep 0.1; _i=$((_i + 1))
        done
}

lab_ms() { echo $(($(date +%s%N) / 1000000)); }

lab_json_path() {
        # numbered by the files already there (it runs in $(...) subshells): it creates its file
        _n=$(($(ls "$MPF_LAB_OUT/json" | wc -l) + 1))
        _ext=json
        [ "${2:-}" = lines ] && _ext=jsonl
        _p=$(printf '%s/json/%03d-%s.%s' "$MPF_LAB_OUT" "$_n" "$1" "$_ext")
        : > "$_p"
        printf '%s\n' "$_p"
}

lab_run() {
        _v=$1; shift
        _s=$(lab_ms)
        "$@" > "$MPF_LAB_OUT/.run.out" 2> "$MPF_LAB_OUT/.run.err"
        eval "${_v}_rc=\$?"
        _j=
        for _a in "$@"; do
                case $_a in
                --json | -j) [ -z "$_j" ] && _j=doc ;;
                --json-lines) _j=lines ;;
                esac
        done
        [ -n "$_j" ] && cp "$MPF_LAB_OUT/.run.out" "$(lab_json_path "$_v" "$_j")"
        eval "${_v}_ms=\$((\$(lab_ms) - _s))"
        eval "${_v}_out=\$(cat \"\$MPF_LAB_OUT/.run.out\")"
        eval "${_v}_err=\$(cat \"\$MPF_LAB_OUT/.run.err\")"
        echo "+ $* -> exit $(eval echo "\$${_v}_rc") in $(eval echo "\$${_v}_ms") ms"
        sed 's/^/  out: /' "$MPF_LAB_OUT/.run.out"
        sed 's/^/  err: /' "$MPF_LAB_OUT/.run.err"
}

lab_full() { [ -d /run/systemd/system ]; }

lab_udev_start() {
        if lab_full; then lab_settle; return 0; fi
        /lib/systemd/systemd-udevd --daemon
        # The block devices there at boot (the lab's disks, qemu's two-path LUNs); every other
        # device (ttys, CPUs, memory blocks, PCI) is of no scenario's concern and would cost
        # seconds of emulated CPU. Devices added later get their events as on any host.
        udevadm trigger --type=devices --subsystem-match=block --action=add
        udevadm settle -t 60
}
# lab_udev_light: the set-up of a big SAN made lighter, for scenarios whose checks are about
# maps, not about path devices' udev properties. Debian's multipath-tools depends on
# sg3-utils-udev, whose rules (55-scsi-sg3_id, 58-scsi-sg3_symlink) run sg_inq three times and a
# shell with sed twice on every event of a SCSI disk: 1.5 to 2.5 s of emulated CPU a path event,
# and every path has at least two (its add, and the change multipath triggers when it takes the
# path into a map). Masked here (in /run/udev/rules.d, for this boot only), the path's ID_SERIAL
# comes from udev's own scsi_id (60-persistent-storage.rules), as on a host without
# sg3-utils-udev: the NAA designator (3333...) instead of the T10 vendor ID (1Linux_scsi_debug_...),
# so map UUIDs differ, nothing else a scenario sees does (16 path change events: 22 s with
# Debian's rules, 8.5 s without them, 2026-12-01, 2-CPU guest). Called before the SAN exists and
# for the whole boot: a path whose ID_SERIAL changed under multipathd would be a fault of its own.
# Scenarios about path properties, packages or shutdown (B1-B5, F1, F2, F4, F6, G1), the
# baselines (the stock tools as a Debian host runs them) and the benchmarks behind the README's
# figures keep Debian's rules. B6 (32 maps at poweroff: the unit's order and deadline) uses it;
# B4 keeps the poweroff with Debian's rules. F3 (11 maps whose paths are deleted) uses it: both
# rule files skip remove events, and the last-path rule reads ID_SERIAL whichever rule set it.
lab_udev_light() {
        if [ -d /sys/bus/pseudo/drivers/scsi_debug ]; then
                t_fail "lab_udev_light before the SAN" "scsi_debug is loaded already"
                return 1
        fi
        mkdir -p /run/udev/rules.d
        for _r in 55-scsi-sg3_id.rules 58-scsi-sg3_symlink.rules; do
                ln -sf /dev/null "/run/udev/rules.d/$_r"
        done
        [ ! -e /run/udev/control ] || udevadm control --reload
}
lab_udev_stop() {
        if lab_full; then systemctl stop systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
        else udevadm control --exit; fi
}
# udev's queue empty: the state a scenario's next step may rely on. A big SAN's path events
# take over a minute of emulated CPU on a loaded host (64 paths: sg3-utils-udev's sg_inq and
# sed, `multipath -u`), so the wait is long; going on too early is what fails later.
lab_settle() {
        [ -e /run/udev/control ] || return 0
        udevadm settle -t 180 && return 0
        t_diag "udev's queue was not empty after 180 s (udevadm settle timed out)"
}

lab_san() {
        _luns=${1:-1}
        modprobe -a dm-multipath dm-round-robin
        # Two SCSI hosts, one target each: every LUN is seen twice, with one WWID
        # (vpd_use_hostno=0). Past 256 LUNs a host gets more targets.
        _tgts=$(((_luns + 255) / 256))
        _per=$(((_luns + _tgts - 1) / _tgts))
        modprobe scsi_debug add_host=2 num_tgts=$_tgts max_luns=$_per vpd_use_hostno=0 dev_size_mb=64
        LAB_LUNS=$_luns
        _i=0
        while _lab_count /sys/block/sd*; [ "$_lab_n" -lt $((2 * _tgts * _per)) ] && [ $_i -lt 600 ]; do
                sleep 0.1; _i=$((_i + 1))
        done
        lab_settle
}

lab_qemu_san() {
        modprobe -a dm-multipath dm-round-robin virtio_scsi sd_mod
        LAB_LUNS=$(($(ls /sys/bus/scsi/devices/*/wwid 2>/dev/null | wc -l) / 2))
        lab_settle
}

lab_mpathd_running() { multipathd show daemon > /dev/null 2>&1; }
# multipathd's map names, one a line; fails (and prints nothing) when it does not answer.
# multipathd exits 0 even when it cannot reach the daemon, so its answer must look right too.
_lab_mpathd_map_names() {
        lab_mpathd_running || return 1
        _o=$(multipathd show maps raw format '%n' 2>&1) || return 1
        case $_o in *"error"*|*"timeout"*|*"fail"*) return 1 ;; esac
        [ "$_o" = ok ] && return 0      # its answer when it has no map
        printf '%s\n' "$_o"
}
lab_mpathd_maps_have() {
        if ! _names=$(_lab_mpathd_map_names); then t_fail "$1" "multipathd does not answer show maps"
        elif printf '%s\n' "$_names" | grep -qx -- "$2"; then t_ok "$1"
        else t_fail "$1" "multipathd lists: $(echo $_names)"; fi
}
lab_mpathd_maps_lack() {
        if ! _names=$(_lab_mpathd_map_names); then t_fail "$1" "multipathd does not answer show maps"
        elif printf '%s\n' "$_names" | grep -qx -- "$2"; then t_fail "$1" "multipathd lists: $(echo $_names)"
        else t_ok "$1"; fi
}
lab_mpathd_start() {
        modprobe -a dm-multipath dm-round-robin
        if lab_full; then systemctl start multipathd.service
        else multipathd; fi
        _i=0
        until lab_mpathd_running || [ $_i -ge 100 ]; do sleep 0.1; _i=$((_i + 1)); done
        lab_mpathd_running
}
lab_mpathd_stop() {
        if lab_full; then systemctl stop multipathd.socket multipathd.service
        else multipathd shutdown > /dev/null 2>&1; fi
        _i=0
        while pidof multipathd > /dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
        ! pidof multipathd > /dev/null
}

# The polling loops here look at sysfs with the shell's builtins only (no program, no
# subshell): under qemu's emulation every program started costs 25-80 ms of a CPU, taken
# from the work the loop waits for. The answer after a loop comes from dmsetup.
_lab_count() {  # _lab_count PATH...: _lab_n = how many of the paths exist (a glob's expansion)
        _lab_n=0
        for _lab_p in "$@"; do [ -e "$_lab_p" ] && _lab_n=$((_lab_n + 1)); done
        return 0
}
_lab_count_mpath() {  # _lab_n = multipath maps in sysfs (DM UUID mpath-*; kpartx's are part*-mpath-*)
        _lab_n=0
        for _lab_p in /sys/block/dm-*/dm/uuid; do
                [ -e "$_lab_p" ] && read -r _lab_u 2> /dev/null < "$_lab_p" || continue
                case $_lab_u in mpath-*) _lab_n=$((_lab_n + 1)) ;; esac
        done
        return 0
}
_lab_dm_named() {  # exit 0 if a device-mapper device called $1 is in sysfs
        for _lab_p in /sys/block/dm-*/dm/name; do
                [ -e "$_lab_p" ] && read -r _lab_u 2> /dev/null < "$_lab_p" || continue
                [ "$_lab_u" = "$1" ] && return 0
        done
        return 1
}
lab_maps() { dmsetup ls --target multipath 2>/dev/null | awk '$1 != "No" { print $1 }' | sort; }
lab_map_first() { lab_maps | head -n 1; }
lab_maps_create() {
        _want=${1:-${LAB_LUNS:-1}}
        if lab_mpathd_running; then multipathd reconfigure > /dev/null 2>&1 || true
        else multipath -v0 > /dev/null 2>&1 || true; fi
        _i=0
        while _lab_count_mpath; [ "$_lab_n" -lt "$_want" ] && [ $_i -lt 1200 ]; do
                sleep 0.1; _i=$((_i + 1))
                # multipath may have run before every path was there: try again now and then
                if [ $((_i % 50)) -eq 0 ] && ! lab_mpathd_running; then multipath -v0 > /dev/null 2>&1; fi
        done
        # sysfs has a map from its first table load, dmsetup lists it once it is resumed
        while [ "$(lab_maps | wc -l)" -lt "$_want" ] && [ $_i -lt 1200 ]; do sleep 0.1; _i=$((_i + 1)); done
        lab_settle
        [ "$(lab_maps | wc -l)" -ge "$_want" ]
}
lab_setup() {
        lab_udev_start
        lab_san "$1"
        if [ "${2:-}" = multipathd ]; then t_check "multipathd starts" lab_mpathd_start; fi
        if [ "$1" -eq 1 ]; then t_check "a two-path map is created" lab_maps_create 1
        else t_check "$1 two-path maps are created" lab_maps_create "$1"; fi
        map=$(lab_map_first)
}
lab_map_dev() { basename "$(readlink -f "/dev/mapper/$1")"; }
lab_map_devt() { dmsetup info -c --noheadings -o major,minor --separator : "$1" 2>/dev/null; }
lab_map_paths() { ls "/sys/block/$(lab_map_dev "$1")/slaves" 2>/dev/null; }
lab_map_exists() { dmsetup info "$1" > /dev/null 2>&1; }
lab_map_queueing() { dmsetup table "$1" 2>/dev/null | grep -q queue_if_no_path; }
lab_map_suspended() { dmsetup info "$1" 2>/dev/null | grep -q '^State: *SUSPENDED'; }
lab_map_opencount() { dmsetup info -c --noheadings -o open "$1" 2>/dev/null | tr -d ' '; }
lab_wait_gone() {
        _i=0; _n=$((${2:-10} * 10))
        while _lab_dm_named "$1" && [ $_i -lt $_n ]; do sleep 0.1; _i=$((_i + 1)); done
        ! lab_map_exists "$1"
}

lab_partition() {
        _k=${2:-2}
        _spec='label: dos\n'
        _j=0
        while [ $_j -lt "$_k" ]; do _spec="$_spec,16M,L\n"; _j=$((_j + 1)); done
        printf "$_spec" | sfdisk -q "/dev/mapper/$1" || return 1
        lab_settle
        # The kpartx udev rule adds NAME-partN itself; without udevd, add them by hand
        # with the same names.
        [ -e "/dev/mapper/$1-part1" ] || kpartx -a -p -part "/dev/mapper/$1" || return 1
        lab_settle
        _j=1
        while [ $_j -le "$_k" ]; do lab_map_exists "$1-part$_j" || return 1; _j=$((_j + 1)); done
}

lab_path_offline() { echo offline > "/sys/block/$1/device/state"; }
lab_path_online() { echo running > "/sys/block/$1/device/state"; }
lab_path_delete() { echo 1 > "/sys/block/$1/device/delete"; }
