#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E4: multipathd stopped with SIGSTOP and its listen backlog full (connections
# that are never accepted): a connect() to it would block for ever. mpath-flush
# -t 5 answers within 6 s all the same: the map is removed, multipathd's part of
# the queueing step is reported as timed out and skipped. --dry-run (which never
# talks to multipathd) predicts the removal and changes nothing.
# Then multipathd that takes our disablequeueing but answers it after our
# deadline (the E6 case: busy with other maps): its log goes to a pipe nobody
# reads, so the listener that took the command stops at its first log line
# ("disable map queueing (operator)") until the pipe is read again. -t 2, the
# pipe read 0.8 s after the deadline: the steps after queueing go on without
# the answer, which is waited for before sole-opener until the deadline: no
# remove starts;
# the put-back reads the late answer and
# sends restorequeueing after it on the same connection; the map ends with
# queueing on in the kernel and in multipathd. Read only after the run: no
# answer within the put-back's 2 s, the run says queueing could not be
# restored (exit 7), multipathd switches it off as warned, and the next
# flusher of the map finishes the undo record (restorequeueing, queue_if_no_path).
# Then the helper SIGKILLed with that answer pending (after the send, before
# sole-opener): its guardian sends restorequeueing on a connection of its own,
# waits for it up to its 2 s, then puts queue_if_no_path back in the kernel.
# multipathd's log read 0.5 s after the kill: the map ends as found, no record
# left. Read only 4 s after (the guardian's 2 s have passed): multipathd carries
# out the dead helper's command; the record keeps queueing off in the kernel and
# in multipathd, and the next flusher puts both back. Left so, with multipathd
# still busy: the next flusher's restorequeueing does not get through but its
# queue_if_no_path does, and its queueing step, reading the table again, switches
# queueing off before the flush (and no remove starts without multipathd's answer).
# mpf-lab: mode=fast timeout=300 cpu=timing
. /usr/lib/mpf-lab/lib.sh

lab_setup 2 multipathd
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

# ---- the late answer ----
map2=$(lab_maps | grep -vx -- "$map" | head -n 1)
mpathd_queueing() { multipathd show maps format "%n %Q" 2> /dev/null | awk -v m="$1" '$1 == m { print $2 }'; }
as_found() { lab_map_queueing "$map2" && [ "$(mpathd_queueing "$map2")" = "$q0" ]; }
t_check "multipathd stops" lab_mpathd_stop
fifo=$MPF_LAB_OUT/mpathd.fifo
mkfifo "$fifo"
exec 3<> "$fifo"
multipathd -d -s > "$fifo" 2>&1 &
mpid=$!
# its log is read until stall_log, and again from read_log_after
(exec cat <&3 >> "$MPF_LAB_OUT/mpathd.log") &
reader=$!
_i=0
until lab_mpathd_running || [ $_i -ge 100 ]; do sleep 0.1; _i=$((_i + 1)); done
lab_mpathd_maps_have "multipathd (in the foreground, its log a pipe) knows $map2" "$map2"
q0=$(mpathd_queueing "$map2")
t_diag "$map2: multipathd's queueing: $q0; table: $(dmsetup table "$map2")"
t_check "$map2 queues in the kernel" lab_map_queueing "$map2"
t_check "$map2 queues in multipathd ($q0)" test -n "$q0" -a "$q0" != off -a "$q0" != -
stall_log() {
        kill "$reader"; wait "$reader" 2> /dev/null
        # the pipe full to the byte: multipathd's next log line blocks
        dd if=/dev/zero of="$fifo" bs=4096 count=64 oflag=nonblock 2> /dev/null
        dd if=/dev/zero of="$fifo" bs=1 count=8192 oflag=nonblock 2> /dev/null
}
read_log_after() { (sleep "$1"; exec cat <&3 >> "$MPF_LAB_OUT/mpathd.log") & reader=$!; }

# 1. The answer comes 0.8 s after the deadline, within the put-back's 2 s
stall_log
read_log_after 2.8
lab_run r timeout -s KILL 30 mpath-flush --json -v -t 2 "$map2"
t_diag "late answer: mpath-flush -t 2 took $r_ms ms, exit $r_rc"
t_is "late answer: the steps after queueing ran without the answer; timeout at sole-opener, before which it was waited for" "$(printf '%s' "$r_out" | jq -r '.maps[0] | "\(.result)@\(.step)"')" timeout@sole-opener
t_like "late answer: multipathd had not answered disablequeueing by the deadline" "$r_err" \
        "$map2: (queueing|sole-opener): multipathd (has not answered disablequeueing|did not disable queueing: .*timed out)"
t_check "late answer: the run answered within the deadline and the 2 s of putting back ($r_ms ms)" test "$r_ms" -lt 4500
t_is "late answer: exit 5 (timeout; queueing put back)" "$r_rc" 5
sleep 0.5
t_check "late answer: multipathd answers" lab_mpathd_running
t_like "late answer: multipathd carried out our disablequeueing late" "$(cat "$MPF_LAB_OUT/mpathd.log")" \
        "$map2: disable map queueing"
t_check "late answer: $map2 queues in the kernel and in multipathd as found ($(mpathd_queueing "$map2"); $(dmsetup table "$map2" | cut -d' ' -f3-5))" as_found

# 2. No answer within the put-back's grace (the pipe read after the run): said so, exit 7
stall_log
lab_run r timeout -s KILL 30 mpath-flush --json -v -t 1 "$map2"
t_diag "no answer: mpath-flush -t 1 took $r_ms ms, exit $r_rc"
read_log_after 0
t_is "no answer: exit 7 (queueing could not be restored)" "$r_rc" 7
t_like "no answer: it says multipathd may still switch queueing off" "$r_err" "may still switch queueing off"
t_check "no answer: the run answered within the deadline and the 2 s of putting back ($r_ms ms)" test "$r_ms" -lt 4500
sleep 0.5
t_check "no answer: multipathd answers again" lab_mpathd_running
t_is "no answer: multipathd switched queueing off later, as warned" "$(mpathd_queueing "$map2")" off
# The undo record keeps queueing off in the kernel and in multipathd, and the next flusher of the
# map (here it finds the map busy) puts both back and leaves no record.
record_then_next_flusher() {
        t_is "$1: the undo record keeps queueing off in the kernel and in multipathd, for the next flusher" \
                "$(cat /run/mpath-flush/undo/* 2> /dev/null | grep '^queueing-off' | tr '\n' ' ')" \
                "queueing-off kernel queueing-off multipathd "
        sleep 60 < "/dev/mapper/$map2" &
        holder=$!
        lab_run r timeout -s KILL 30 mpath-flush --json -t 3 "$map2"
        kill "$holder"
        t_is "$1: next flusher: busy" "$(printf '%s' "$r_out" | jq -r '.maps[0].result')" busy
        t_check "$1: next flusher: $map2 queues in the kernel and in multipathd as found ($(mpathd_queueing "$map2"); $(dmsetup table "$map2" | cut -d' ' -f3-5))" as_found
        t_is "$1: next flusher: no undo record is left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""
}
record_then_next_flusher "no answer"
# 3. Killed with the answer pending (an orchestrator's timeout): SIGKILL once the flush step has
# begun, so after the send and before sole-opener, with multipathd's listener holding our
# command. The guardian sends restorequeueing on a connection of its own and waits for it up to
# its 2 s, then puts queue_if_no_path back in the kernel. multipathd's log is read 0.5 s after
# the kill: it carries out the dead helper's command (or drops it), then the guardian's restore.
# The map ends as found.
guardians() { pgrep -x mpath-flush-gd | wc -l; }
kill_pending() {
        _tag=$1 _after=$2
        stall_log
        mpath-flush -v -t 20 "$map2" 2> "$MPF_LAB_OUT/kill-$_tag.err" &
        _pid=$!
        _i=0
        until grep -q "$map2: flush: starting" "$MPF_LAB_OUT/kill-$_tag.err" || [ $_i -ge 100 ]; do
                sleep 0.05; _i=$((_i + 1))
        done
        t_like "$_tag: the flush step began, multipathd holding our disablequeueing" \
                "$(cat "$MPF_LAB_OUT/kill-$_tag.err")" "$map2: flush: starting"
        sleep 0.3
        kill -KILL "$_pid"
        wait "$_pid" 2> /dev/null
        t_check_fails "$_tag: the helper had not started the remove" \
                grep -q "$map2: remove: starting" "$MPF_LAB_OUT/kill-$_tag.err"
        read_log_after "$_after"
        _i=0
        while [ "$(guardians)" -gt 0 ] && [ $_i -lt 60 ]; do sleep 0.1; _i=$((_i + 1)); done
        t_is "$_tag: the guardian is gone within 6 s" "$(guardians)" 0
        sleep 0.5
        t_check "$_tag: multipathd answers" lab_mpathd_running
        t_check "$_tag: the map is still there" lab_map_exists "$map2"
}
kill_pending "killed, answer pending" 0.5
t_check "killed, answer pending: $map2 queues in the kernel and in multipathd as found ($(mpathd_queueing "$map2"); $(dmsetup table "$map2" | cut -d' ' -f3-5))" as_found
t_is "killed, answer pending: no undo record is left" "$(ls /run/mpath-flush/undo/ 2> /dev/null | tr '\n' ' ')" ""

# 4. The same, multipathd's log read only after the guardian gave up (4 s; it waits 2 s from
# the kill): the record says what is left to put back, and the next flusher of the map puts it
# back.
kill_pending "killed, no answer" 4
t_diag "killed, no answer: multipathd $(mpathd_queueing "$map2"); table $(dmsetup table "$map2" | cut -d' ' -f3-5); record: $(cat /run/mpath-flush/undo/* 2> /dev/null | grep '^queueing-off' | tr '\n' ' ')"
record_then_next_flusher "killed, no answer"

# 5. The next flusher while multipathd is still busy: the record's restorequeueing does not get
# through (4 s), queue_if_no_path does, so the kernel queues again while the record keeps both
# marks. The flusher reads the table again and its queueing step switches queueing off (sends
# disablequeueing, fail_if_no_path); multipathd has not answered by sole-opener, so no remove
# starts. (A flusher that kept the table it read before the put-back saw queueing off, skipped
# the step, and removed the map with queueing on in the kernel.)
kill_pending "busy next flusher" 4
stall_log
lab_run r timeout -s KILL 40 mpath-flush --json -v -t 8 "$map2"
read_log_after 0
t_diag "busy next flusher: mpath-flush -t 8 took $r_ms ms, exit $r_rc"
t_like "busy next flusher: the record's restorequeueing did not get through" "$r_err" \
        "$map2: queueing: Failed to restore queueing in multipathd: no answer in time"
t_is "busy next flusher: its queueing step found queueing on again (put back in the kernel from the record)" \
        "$(printf '%s' "$r_out" | jq -r '.maps[0].queueing.before')" true
t_check_fails "busy next flusher: no remove started" sh -c 'printf "%s\n" "$1" | grep -q "$2: remove: starting"' _ "$r_err" "$map2"
t_is "busy next flusher: timeout at sole-opener, multipathd's answer not there" \
        "$(printf '%s' "$r_out" | jq -r '.maps[0] | "\(.result)@\(.step)"')" timeout@sole-opener
sleep 0.5
t_check "busy next flusher: multipathd answers again" lab_mpathd_running
t_check "busy next flusher: the map is still there" lab_map_exists "$map2"
record_then_next_flusher "busy next flusher"
t_done
