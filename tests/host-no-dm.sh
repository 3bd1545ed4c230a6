#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# On a machine without device-mapper (like the project's build machines), the
# helper says so in one line and exits 6, for a name and for --all.
# Skipped (77) where /dev/mapper/control exists: the lab covers that side.
exe=${1:?usage: host-no-dm.sh MPATH-FLUSH}
[ -e /dev/mapper/control ] && { echo "1..0 # SKIP this machine has device-mapper"; exit 0; }
n=0 fail=0
check() {  # check DESC ARGS...
        desc=$1; shift
        err=$("$exe" "$@" 2>&1 >/dev/null); rc=$?
        n=$((n + 1))
        lines=$(printf '%s\n' "$err" | grep -c .)
        if [ "$rc" -eq 6 ] && [ "$lines" -eq 1 ] && printf '%s' "$err" | grep -q 'device-mapper\|/dev/mapper/control'; then
                echo "ok $n - $desc: exit 6, one line naming device-mapper"
        else
                echo "not ok $n - $desc: exit $rc, stderr: $err"; fail=1
        fi
}
check "a map name" mpatha
check "--all" --all
check "--dry-run" --dry-run mpatha
echo "1..$n"
exit $fail
