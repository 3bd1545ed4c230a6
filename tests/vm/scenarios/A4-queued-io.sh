#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A4: a queueing map, both paths offline, a process whose read is queued though
# it closed its fd (open count raised, no opener in /proc). multipath -f refuses
# ("map in use"); mpath-flush disables queueing, the read fails, the process
# exits, the map is removed, within the deadline. The device cache flush fails
# (no path): with no active path in the kernel's status, that does not keep the map.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "the map queues" lab_map_queueing "$map"
for p in $(lab_map_paths "$map"); do lab_path_offline "$p"; done
sleep 3
aio-io read "/dev/mapper/$map" > "$MPF_LAB_OUT/aio.out" 2>&1 &
aio=$!
sleep 2
t_check "the reader is blocked" kill -0 "$aio"
t_is "its read is queued: open count 1, no fd open" "$(lab_map_opencount "$map")" 1

lab_run m multipath -f "$map"
t_diag "multipath -f on this set-up: exit $m_rc in $m_ms ms: $(printf '%s %s' "$m_out" "$m_err" | tr '\n' ' ')"
t_check "after multipath -f the reader is still blocked" kill -0 "$aio"
t_check "after multipath -f the map is still there" lab_map_exists "$map"

t_like "the dry run reads both paths as failed from the kernel's status" \
        "$(mpath-flush --dry-run "$map")" "flush: fsync \\(0 active path"

lab_run r mpath-flush --json --timeout 20 "$map"
t_is "mpath-flush exits 0" "$r_rc" 0
t_is "result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_like "the cache flush failed, with no active path, and that was not held against the map" \
        "$(printf '%s' "$r_out" | jq -r '.maps[0].reason')" "cache flush failed"
t_is "queueing was on" "$(printf '%s' "$r_out" | jq -r '.maps[0].queueing.before')" true
t_is "the unexplained open was seen" "$(printf '%s' "$r_out" | jq -r '.maps[0].blockers.unexplained_opens')" 1
t_check "within the deadline" test "$r_ms" -lt 20000
t_diag "mpath-flush took $r_ms ms"
t_check_fails "the map is gone" lab_map_exists "$map"
wait "$aio"
t_is "the reader exited with its read failed" "$?" 1
t_like "with EIO" "$(cat "$MPF_LAB_OUT/aio.out")" "completed: -5"
t_done
