#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A9: --deferred on a map a process holds open: the remove is deferred, and the
# map goes when the process closes it.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
sleep 1000 < "/dev/mapper/$map" &
holder=$!
sleep 1
lab_run b mpath-flush --json "$map"
t_is "without --deferred: busy (4)" "$b_rc" 4
t_is "the opener is named" "$(printf '%s' "$b_out" | jq -r '.maps[0].blockers.openers[0].pid')" "$holder"
t_is "with its command" "$(printf '%s' "$b_out" | jq -r '.maps[0].blockers.openers[0].comm')" sleep
lab_run r mpath-flush --json --deferred "$map"
t_is "--deferred: exit 0" "$r_rc" 0
t_is "--deferred: result deferred" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" deferred
t_check "the map is still there while held" lab_map_exists "$map"
dmsetup info "$map"
kill "$holder"; wait "$holder" 2> /dev/null
t_check "the map goes once the holder closes it" lab_wait_gone "$map" 10
t_done
