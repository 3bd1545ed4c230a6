#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E4: multipathd stopped with SIGSTOP and its listen backlog full (connections
# that are never accepted): a connect() to it would block for ever. mpath-flush
# -t 5 answers within 6 s all the same: the map is removed, multipathd's part of
# the queueing step is reported as timed out and skipped. --dry-run (which never
# talks to multipathd) predicts the removal and changes nothing.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "the map queues" lab_map_queueing "$map"

lab_run n mpath-flush --dry-run --json -t 5 "$map"
t_is "dry run: exit 0" "$n_rc" 0
t_is "dry run: predicts removed" "$(printf '%s' "$n_out" | jq -r '.maps[0].result')" removed

mpid=$(pidof multipathd)
kill -STOP "$mpid"
sock-fill /org/kernel/linux/storage/multipathd > "$MPF_LAB_OUT/fill.out" 2>&1 &
filler=$!
_i=0
until grep -q '^full' "$MPF_LAB_OUT/fill.out" || [ $_i -ge 100 ]; do sleep 0.1; _i=$((_i + 1)); done
t_like "multipathd's backlog is full" "$(cat "$MPF_LAB_OUT/fill.out")" '^full [0-9]+$'
t_check "multipathd does not answer (its own client, 2 s)" sh -c '! timeout 2 multipathd show daemon > /dev/null 2>&1'

# bounded by the scenario, in case the helper hangs (it did before: connect() blocked; it holds
# SIGTERM back, so SIGKILL)
lab_run r timeout -s KILL 30 mpath-flush --json -v -t 5 "$map"
t_diag "mpath-flush -t 5 took $r_ms ms"
t_check "it answered within 6 s ($r_ms ms)" test "$r_ms" -lt 6000
t_is "exit 0" "$r_rc" 0
t_is "removed" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" removed
t_like "multipathd's part was skipped at its deadline" "$r_err" 'multipathd did not disable queueing: .*(timed out|Connection timed out)'
t_check_fails "the map is gone" lab_map_exists "$map"

kill "$filler"
kill -CONT "$mpid"
t_check "multipathd answers again" lab_mpathd_running
t_done
