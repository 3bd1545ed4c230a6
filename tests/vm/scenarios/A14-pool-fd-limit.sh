#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A14: the pool at a tiny fd limit. The main process keeps each removed map's lock fds (one
# for the map, one per path) until its one udev wait; they must never be dropped in silence at
# RLIMIT_NOFILE (MSG_CTRUNC). Two runs of 12 two-path maps each, --jobs 4:
# - hard and soft limit 24 (nothing to raise): the run keeps locks within half its limit, the
#   later maps' workers wait for udev themselves ("waits for udev itself" in the -v log); every
#   map removed, exit 0, no "locks could not be kept";
# - soft limit 24, hard limit as given: the helper raises its soft limit to the hard one at
#   start, so every map keeps its locks for the shared wait (no worker waits itself).
# mpf-lab: mode=fast timeout=300
. /usr/lib/mpf-lab/lib.sh

lab_udev_light
lab_setup 24
set -- $(lab_maps)
first="$1 $2 $3 $4 $5 $6 $7 $8 $9 ${10} ${11} ${12}"
shift 12
second="$*"

run() { # LIMIT-ARGS NAME JSON MAPS...
        _lim=$1 _name=$2 _json=$3
        shift 3
        sh -c "ulimit $_lim 24 && exec mpath-flush --jobs 4 --json -v -t 60 $*" \
                > "$_json" 2> "$MPF_LAB_OUT/$_name.log"
        echo $? > "$MPF_LAB_OUT/$_name.rc"
}

hard=$(lab_json_path hard)
soft=$(lab_json_path soft)
run -n hard "$hard" $first
t_diag "hard 24: exit $(cat "$MPF_LAB_OUT/hard.rc"), own udev waits: $(grep -c 'waits for udev itself' "$MPF_LAB_OUT/hard.log")"
t_is "hard 24: exit 0" "$(cat "$MPF_LAB_OUT/hard.rc")" 0
t_is "hard 24: all 12 removed" \
        "$(jq '[.maps[] | select(.result == "removed")] | length' "$hard")" 12
t_is "hard 24: no map lost its locks (log)" "$(grep -c 'could not be kept' "$MPF_LAB_OUT/hard.log")" 0
t_is "hard 24: no map lost its locks (JSON)" \
        "$(jq '[.maps[] | select(.reason // "" | test("could not be kept"))] | length' "$hard")" 0
t_check "hard 24: past the fd budget, workers waited for udev themselves" \
        grep -q 'waits for udev itself' "$MPF_LAB_OUT/hard.log"
for m in $first; do
        t_check "$m gone" test ! -e "/dev/mapper/$m"
done

run -Sn soft "$soft" $second
t_is "soft 24: exit 0" "$(cat "$MPF_LAB_OUT/soft.rc")" 0
t_is "soft 24: all 12 removed" \
        "$(jq '[.maps[] | select(.result == "removed")] | length' "$soft")" 12
t_is "soft 24 raised to the hard limit: no worker waited for udev itself" \
        "$(grep -c 'waits for udev itself' "$MPF_LAB_OUT/soft.log")" 0
t_is "nothing left" "$(lab_maps | wc -l)" 0
t_done
