#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Stress (not in the suite: about 7 minutes): --all -vv over 48 maps in a loop, with a contending instance on 3 maps,
# 2 maps held open by a reader for the first 2 s, 1 map's lock held by another tool for 2 s.
# A round that runs into its deadline (the stall: a map kept busy at remove by our own process)
# fails; the -vv log of a failing round is kept.
# mpf-lab: mode=fast timeout=1500
. /usr/lib/mpf-lab/lib.sh
N=${S1_MAPS:-48}
R=${S1_ROUNDS:-6}
lab_setup "$N" multipathd
# udev may still be working off the maps' creation after lab_setup's settle timed out: a round
# started then waits for udev at its end until the deadline (seen once)
udevadm settle -t 600
round=0
while [ $round -lt "$R" ]; do
        round=$((round + 1))
        [ $round -gt 1 ] && { t_check "round $round: $N maps re-created" lab_maps_create "$N" || break; }
        set -- $(lab_maps)
        a=$1 b=$2 c=$3 h1=$4 h2=$5 y=$6
        sleep 2 < "/dev/mapper/$h1" &
        sleep 2 < "/dev/mapper/$h2" &
        mkdir -p /run/mpath-flush/lock; chmod 700 /run/mpath-flush/lock
        flock "/run/mpath-flush/lock/$(dmsetup info -c --noheadings -o uuid "$y")" sleep 2 &
        sleep 0.2
        t0=$(lab_ms)
        (mpath-flush --all --json -vv -t 40 > "$MPF_LAB_OUT/all-$round.json" 2> "$MPF_LAB_OUT/all-$round.log"
         echo $? > "$MPF_LAB_OUT/all-$round.rc") &
        fa=$!
        for m in "$a" "$b" "$c"; do
                (mpath-flush --json -t 40 "$m" > "$MPF_LAB_OUT/one-$round-$m.json" 2>&1) &
        done
        wait "$fa"
        wait
        took=$(($(lab_ms) - t0))
        res=$(jq -r '[.maps[] | "\(.result)"] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$MPF_LAB_OUT/all-$round.json")
        t_diag "round $round: --all exit $(cat "$MPF_LAB_OUT/all-$round.rc") in $took ms: $res"
        bad=$(jq -r --arg h1 "$h1" --arg h2 "$h2" '[.maps[] | select(.result != "removed" and .result != "absent") | select((.map == $h1 or .map == $h2) and .result == "busy" | not) | "\(.map)=\(.result)@\(.step) \(.reason)"] | join("; ")' "$MPF_LAB_OUT/all-$round.json")
        t_is "round $round: every map removed or absent" "$bad" ""
        t_check "round $round: done well before the deadline ($took ms)" test "$took" -lt 30000
        mpath-flush -q -t 20 "$h1" "$h2" 2> /dev/null
        t_is "round $round: no map left" "$(lab_maps | wc -l)" 0
        [ -z "$bad" ] && rm -f "$MPF_LAB_OUT/all-$round.log"
done
t_done
