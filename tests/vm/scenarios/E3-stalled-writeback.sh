#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E3: a write-back that stalls past the deadline. A writer wrote to the map and
# closed it; then every SCSI command takes 10 s (scsi_debug delay), so the
# flush's cache flush (SYNCHRONIZE CACHE, owed since that write) cannot finish.
# `out=$(mpath-flush --json -t 3 MAP)` returns within 4 s with `timeout`: the
# stuck write-back worker holds neither the caller's stdout nor the map's O_EXCL
# claim, so the map can be claimed (as mount does) right after, and the worker
# is named in the result. While it is stuck, the dry run and the real run both
# name it as the map's opener. Once the I/O ends, the map is removed as usual.
# mpf-lab: mode=fast timeout=240 cpu=timing
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
# multipathd's path checkers would keep slow commands queued long after the stall (so that
# scsi_debug refuses to drop the delay): without it, the stall ends with the flush's command.
# It switches queueing off when it stops; switch it back on.
t_check "multipathd stops" lab_mpathd_stop
t_check "queueing on again" dmsetup message "$map" 0 queue_if_no_path
t_check "the map queues" lab_map_queueing "$map"
dm=$(lab_map_dev "$map")
# alive PID: the process exists and is not a zombie (an orphan is reaped by nobody here)
alive() { _st=$(cut -d' ' -f3 "/proc/$1/stat" 2> /dev/null); [ -n "$_st" ] && [ "$_st" != Z ]; }
t_is "the paths have a write-back cache" "$(cat "/sys/block/$(lab_map_paths "$map" | head -n 1)/queue/write_cache")" "write back"
t_is "so has the map (fsync sends a cache flush)" "$(cat "/sys/block/$dm/queue/write_cache")" "write back"
t_check "a writer writes 1 MiB and closes the map" \
        dd if=/dev/urandom of="/dev/mapper/$map" bs=64k count=16 status=none
lab_settle
t_check "every SCSI command now takes 10 s" sh -c 'echo 2500 > /sys/bus/pseudo/drivers/scsi_debug/delay'

s=$(lab_ms)
out=$(mpath-flush --json -t 3 "$map" 2> "$MPF_LAB_OUT/e3.err")
rc=$?
ms=$(($(lab_ms) - s))
printf '%s\n' "$out"
cat "$MPF_LAB_OUT/e3.err"
t_diag "out=\$(mpath-flush --json -t 3) returned in $ms ms"
t_check "out=\$(mpath-flush --json -t 3) returns within 4 s" test "$ms" -lt 4000
t_is "exit 5 (timeout)" "$rc" 5
t_is "result timeout" "$(printf '%s' "$out" | jq -r '.maps[0].result')" timeout
t_is "at flush" "$(printf '%s' "$out" | jq -r '.maps[0].step')" flush
worker=$(printf '%s' "$out" | jq -r '.maps[0].stuck_worker')
t_like "the stuck worker is named in the result" "$worker" '^[0-9]+$'
t_like "and in the reason" "$(printf '%s' "$out" | jq -r '.maps[0].reason')" "pid $worker.*stuck"
t_check "it is still there, in the kernel" alive "$worker"
t_check "while it is, the map can be claimed (O_EXCL, as mount does)" excl-open "/dev/mapper/$map"
t_diag "worker $worker: $(cat "/proc/$worker/stat" 2> /dev/null | cut -d' ' -f3) in $(cat "/proc/$worker/wchan" 2> /dev/null)"
t_is "its stdout is not ours" "$(readlink "/proc/$worker/fd/1")" /dev/null
t_check "queueing was restored" lab_map_queueing "$map"
t_check_fails "the map is not suspended" lab_map_suspended "$map"

lab_run d mpath-flush --dry-run --json -t 3 "$map"
t_is "dry run while it is stuck: exit 4 (busy)" "$d_rc" 4
t_is "dry run: the worker is the opener" "$(printf '%s' "$d_out" | jq -r '.maps[0].blockers.openers[0].pid')" "$worker"
# The real run, with a SIGTERM while it runs (once it holds SIGTERM back): the signal must not
# turn its "busy" into a death by SIGTERM, which systemd counts as success.
s=$(lab_ms)
mpath-flush --json -t 3 "$map" > "$MPF_LAB_OUT/r.json" 2> "$MPF_LAB_OUT/r.err" &
pid=$!
i=0
until [ $(( 0x$(awk '/^SigBlk:/ { print $2 }' "/proc/$pid/status" 2> /dev/null || echo 0) & 0x4000 )) -ne 0 ] || [ $i -ge 200 ]; do
        sleep 0.01; i=$((i + 1))
done
kill -TERM "$pid"
wait "$pid"
rc=$?
ms=$(($(lab_ms) - s))
cat "$MPF_LAB_OUT/r.json" "$MPF_LAB_OUT/r.err"
t_is "real run while it is stuck, SIGTERM during it: exit 4 (busy), as predicted, not death by SIGTERM" "$rc" 4
t_is "real run: the worker is the opener, as predicted" "$(jq -r '.maps[0].blockers.openers[0].pid' "$MPF_LAB_OUT/r.json")" "$worker"
t_check "real run: within 4 s" test "$ms" -lt 4000

# scsi_debug refuses a new delay while commands are queued: retry until it takes it
i=0
until (echo 0 > /sys/bus/pseudo/drivers/scsi_debug/delay) 2> /dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
t_is "commands are fast again" "$(cat /sys/bus/pseudo/drivers/scsi_debug/delay)" 0
i=0
while alive "$worker" && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
t_check_fails "the worker ends when its I/O does" alive "$worker"
lab_run g mpath-flush --json "$map"
t_is "then the map is removed (exit 0)" "$g_rc" 0
t_check_fails "the map is gone" lab_map_exists "$map"
t_done
