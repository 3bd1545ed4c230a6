#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# E9: the run is SIGKILLed while its write-back worker waits for a path lock that
# someone else holds (flock -s, as multipathd or another flusher would), single map
# and --jobs 2. 3 s after the kill no process of ours has the path device open (the
# worker dies with its parent: before, it waited on until the deadline, 120 s here,
# to take the lock for no one the moment it was free), and the map is back as found
# (queueing on) by the guardian.
# mpf-lab: mode=fast timeout=300
. /usr/lib/mpf-lab/lib.sh

lab_setup 2 multipathd
set -- $(lab_maps)
openers() { for f in /proc/[0-9]*/fd/*; do [ "$(readlink "$f" 2> /dev/null)" = "/dev/$1" ] && { p=${f#/proc/}; echo "${p%%/*}"; }; done | sort -u; }
for mode in single pool; do
        m=$1
        p=$(lab_map_paths "$m" | tail -n 1)
        ( exec 9< "/dev/$p"; flock -s 9; exec sleep 600 ) & holder=$!
        sleep 0.3
        if [ $mode = single ]; then
                mpath-flush -vv -t 120 "$m" 2> "$MPF_LAB_OUT/$mode.err" & pid=$!
        else
                mpath-flush -vv -t 120 --jobs 2 "$1" "$2" 2> "$MPF_LAB_OUT/$mode.err" & pid=$!
        fi
        sleep 4
        t_diag "($mode) openers of /dev/$p before the kill: $(for o in $(openers "$p"); do printf '%s(%s) ' "$o" "$(cat /proc/$o/comm)"; done)"
        kill -KILL $pid; wait $pid 2> /dev/null
        sleep 3
        left=
        for o in $(openers "$p"); do [ "$o" = "$holder" ] || [ "$(cat /proc/$o/comm 2> /dev/null)" = multipathd ] || left="$left $o($(cat /proc/$o/comm 2> /dev/null))"; done
        t_is "($mode) 3 s after SIGKILL no process of ours has /dev/$p open" "$left" ""
        kill $holder; wait $holder 2> /dev/null
        sleep 0.5
        t_diag "($mode) after the holder let go: openers $(openers "$p" | tr '\n' ' ')"
        i=0
        until lab_map_queueing "$m" || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
        t_check "($mode) $m is back as found (queueing)" lab_map_queueing "$m"
        grep -v libdevmapper "$MPF_LAB_OUT/$mode.err" | tail -n 5
done
t_done
