#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Baseline: a queueing map with both paths offline and a reader blocked in I/O.
# `multipath -f` refuses ("map in use"); the reader stays blocked until queueing
# is disabled by hand.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
t_check "the map queues when it has no path" lab_map_queueing "$map"
for p in $(lab_map_paths "$map"); do lab_path_offline "$p"; done
sleep 3
dmsetup status "$map"
dd if="/dev/mapper/$map" of=/dev/null bs=4k count=1 iflag=direct 2> "$MPF_LAB_OUT/dd.err" &
dd_pid=$!
sleep 2
t_check "the reader is blocked" kill -0 "$dd_pid"

lab_run f multipath -f "$map"
t_is "multipath -f exits 1" "$f_rc" 1
t_like "it says 'map in use'" "$f_out $f_err" "in use"
t_check "the reader is still blocked" kill -0 "$dd_pid"
t_check "the map is still there" lab_map_exists "$map"
t_check_fails "the map is not left suspended" lab_map_suspended "$map"

t_check "fail_if_no_path by hand" dmsetup message "$map" 0 fail_if_no_path
wait "$dd_pid"
t_is "then the reader fails" "$?" 1
t_like "with an I/O error" "$(cat "$MPF_LAB_OUT/dd.err")" "Input/output error"
t_done
