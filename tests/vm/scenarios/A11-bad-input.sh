#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A11: bad input gets one clear line and its documented exit code, and touches
# nothing.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1
t_check "two partition maps" lab_partition "$map" 2
dmsetup create plain --table "0 2048 zero"
lab_settle
before=$(dmsetup ls | sort)

expect() {  # expect CODE DESCRIPTION ARGS...
        _code=$1 _desc=$2; shift 2
        lab_run x mpath-flush "$@"
        t_is "$_desc: exit $_code" "$x_rc" "$_code"
        t_is "$_desc: one line on stderr" "$(printf '%s\n' "$x_err" | grep -c .)" 1
}
long=$(printf 'm%.0s' $(seq 1 200))
expect 2 "no MAP"
expect 2 "an empty name" ""
expect 2 "an overlong name" "$long"
expect 2 "a name with a slash" "a/b"
expect 2 "a name with a control character" "$(printf 'map\001x')"
expect 2 "an unknown option" --frobnicate "$map"
expect 2 "a bad timeout" --timeout abc "$map"
expect 2 "a negative timeout" --timeout -1 "$map"
expect 2 "MAP and --all together" --all "$map"
# with --json (anywhere), the usage error is a JSON document on stdout too (and on the
# host, schema-checked like every other)
expect 2 "an unknown option, with --json" --frobnicate --json "$map"
t_is "  ... and a JSON document with exit_status 2 and the error" \
        "$(printf '%s' "$x_out" | jq -r '"\(.exit_status) \(.maps | length) \(.error)"')" \
        "2 0 unknown or incomplete option '--frobnicate'"
expect 2 "no MAP, with --json-lines"  --json-lines
t_is "  ... and one summary line with exit_status 2" \
        "$(printf '%s' "$x_out" | jq -r '"\(.type) \(.exit_status)"')" "summary 2"
expect 3 "a linear (non-multipath) map" plain
expect 3 "a partition map" "$map-part1"
expect 3 "a block device that is not dm" /dev/sda
lab_run x mpath-flush --json nosuchmap
t_is "an absent map: exit 0" "$x_rc" 0
t_is "an absent map: result absent" "$(printf '%s' "$x_out" | jq -r '.maps[0].result')" absent
lab_run x mpath-flush mpath-0000nosuchwwid
t_is "an absent UUID: exit 0" "$x_rc" 0
lab_run x setpriv --reuid=65534 --regid=65534 --clear-groups mpath-flush "$map"
t_is "not root: exit 6" "$x_rc" 6
t_like "not root: says so" "$x_err" "root|ermission|ermitted"
mv /dev/mapper/control /dev/mapper/control.away
lab_run x mpath-flush "$map"
mv /dev/mapper/control.away /dev/mapper/control
t_is "no /dev/mapper/control: exit 6" "$x_rc" 6
t_like "no /dev/mapper/control: says so" "$x_err" "device-mapper|/dev/mapper/control"
t_is "nothing was touched" "$(dmsetup ls | sort)" "$before"
t_check_fails "the map is not suspended" lab_map_suspended "$map"
t_done
