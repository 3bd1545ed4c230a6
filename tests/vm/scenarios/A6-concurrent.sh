#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A6: four mpath-flush instances and multipath -f on one map, started together,
# with multipathd running: the map is removed once, every mpath-flush ends with
# removed or absent, nothing is re-created.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
for i in 1 2 3 4; do
        json=$(lab_json_path "f$i")
        (mpath-flush --json "$map" > "$json" 2> "$MPF_LAB_OUT/f$i.err"; echo $? > "$MPF_LAB_OUT/f$i.rc") &
done
(multipath -f "$map" > "$MPF_LAB_OUT/m.out" 2>&1; echo $? > "$MPF_LAB_OUT/m.rc") &
wait
removed=0
for i in 1 2 3 4; do
        res=$(jq -r '.maps[0].result' "$MPF_LAB_OUT"/json/*-f$i.json)
        t_is "instance $i exits 0" "$(cat "$MPF_LAB_OUT/f$i.rc")" 0
        t_like "instance $i: removed or absent" "$res" '^(removed|absent)$'
        [ "$res" = removed ] && removed=$((removed + 1))
        cat "$MPF_LAB_OUT/f$i.err"
done
t_diag "multipath -f: exit $(cat "$MPF_LAB_OUT/m.rc"): $(tr '\n' ' ' < "$MPF_LAB_OUT/m.out")"
t_check "at most one instance removed it" test "$removed" -le 1
t_check_fails "the map is gone" lab_map_exists "$map"
sleep 10
t_is "nothing re-created after 10 s" "$(lab_maps | wc -l)" 0
t_done
