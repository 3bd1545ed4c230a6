#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E5: a queueing map with both paths offline, and a write queued on it by a
# writer that already closed its fd (O_DIRECT, Linux AIO). Switching queueing
# off fails the write; the map is still removed (keeping it would save
# nothing), and the result says written data was lost: exit 8, "data_lost" and
# "failed_write_bytes" in the JSON. The dry run predicts the removal and says the
# queued I/O will fail and what that costs if it holds writes.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "the map queues" lab_map_queueing "$map"
for p in $(lab_map_paths "$map"); do lab_path_offline "$p"; done
sleep 3
aio-io write "/dev/mapper/$map" > "$MPF_LAB_OUT/aio.out" 2>&1 &
aio=$!
sleep 2
t_check "the writer is blocked" kill -0 "$aio"
t_like "its write was submitted" "$(cat "$MPF_LAB_OUT/aio.out")" submitted
t_is "its write is queued: open count 1, no fd open" "$(lab_map_opencount "$map")" 1

lab_run d mpath-flush --dry-run --json --timeout 20 "$map"
t_is "dry run: would be removed" "$(printf '%s' "$d_out" | jq -r '.maps[0].result')" removed
t_like "dry run: the plan says the queued I/O fails, and written data with it" \
        "$(printf '%s' "$d_out" | jq -r '.maps[0].plan | join(" | ")')" "queued I/O.*written data is lost \\(exit 8\\)"
t_check "dry run: the writer is still blocked" kill -0 "$aio"

lab_run r mpath-flush --json --timeout 20 "$map"
t_is "exit 8 (removed, written data lost)" "$r_rc" 8
t_is "result removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_is "data_lost" "$(printf '%s' "$r_out" | jq -r '.maps[0].data_lost')" true
t_is "failed_write_bytes: the 4 KiB write" "$(printf '%s' "$r_out" | jq -r '.maps[0].failed_write_bytes')" 4096
t_like "the reason says so" "$(printf '%s' "$r_out" | jq -r '.maps[0].reason')" "written data was lost"
t_like "and stderr" "$r_err" "written data was lost"
t_is "the JSON exit status too" "$(printf '%s' "$r_out" | jq -r '.exit_status')" 8
t_check "within the deadline" test "$r_ms" -lt 20000
t_diag "mpath-flush took $r_ms ms"
t_check_fails "the map is gone" lab_map_exists "$map"
wait "$aio"
t_is "the writer exited with its write failed" "$?" 1
t_like "with EIO" "$(cat "$MPF_LAB_OUT/aio.out")" "completed: -5"
t_done
