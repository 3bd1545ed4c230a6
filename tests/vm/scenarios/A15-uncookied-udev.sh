#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A15: the cookie-less final remove. (1) `mpath-flush MAP`: once it returns, /dev/mapper/MAP
# is gone at once and udev has nothing left queued. (2) `--all --jobs 1` where a map removed
# without a cookie is followed by a map with partition maps (removed with a cookie, whose wait
# reads the same udev monitor): the run must not wait for the deadline.
# mpf-lab: mode=fast timeout=200
. /usr/lib/mpf-lab/lib.sh

lab_setup 3 multipathd
set -- $(lab_maps)
a=$1 b=$2 c=$3
lab_run r1 mpath-flush "$c"
t_is "single: exit 0" "$r1_rc" 0
t_check_fails "single: /dev/mapper/$c gone when the helper returns" ls "/dev/mapper/$c"
t_check "single: udev has nothing queued" udevadm settle -t 0
t_check "$b has two partition maps" lab_partition "$b" 2
lab_run r2 mpath-flush --all --jobs 1 --json -t 20 -v
t_is "all: exit 0" "$r2_rc" 0
t_is "all: no map waited for the deadline" \
        "$(printf '%s' "$r2_out" | jq -r '[.maps[].reason // "" | select(test("deadline"))] | length')" 0
t_check "all: well before the deadline" test "$r2_ms" -lt 10000
t_check_fails "all: $a gone" lab_map_exists "$a"
t_check_fails "all: $b gone" lab_map_exists "$b"
t_diag "--all --jobs 1 took $r2_ms ms"
t_done
