#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# H3: `mpath-flush --all --json-lines` over 16 maps, killed with SIGKILL in the middle: every line
# it printed before is one complete JSON object, a result per finished map (the host validates
# them all against doc/mpath-flush.schema.json), and no summary line claims a finished run.
# The last map (sorted order) is mounted and --wait-busy is waiting for it when the kill comes,
# so the kill lands after the other 15 maps are done; the mounted map is left as found.
# mpf-lab: mode=fast timeout=480
. /usr/lib/mpf-lab/lib.sh

lab_udev_light
lab_setup 16 multipathd
set -- $(lab_maps)
last=$(lab_maps | tail -n 1)
mkfs.ext4 -q -F "/dev/mapper/$last"
lab_settle
mkdir -p /mnt/last
t_check "$last (the last map) is mounted" mount -o ro,noload "/dev/mapper/$last" /mnt/last

out=$(lab_json_path kill-all lines)
mpath-flush --all --json-lines --wait-busy -t 120 > "$out" 2> "$MPF_LAB_OUT/kill-all.err" &
pid=$!
# kill once the 15 others are reported (each line is flushed as its map is done)
i=0
while [ "$(wc -l < "$out")" -lt 15 ] && [ $i -lt 1200 ] && kill -0 $pid 2> /dev/null; do
        sleep 0.1; i=$((i + 1))
done
sleep 0.5 # well into the wait
kill -KILL $pid
wait $pid
rc=$?
cat "$out"
t_is "killed by SIGKILL (exit 137)" "$rc" 137
t_is "15 lines printed before the kill" "$(wc -l < "$out")" 15
t_is "the output ends with a newline (no cut line)" "$(tail -c 1 "$out" | od -An -tx1 | tr -d ' ')" 0a
bad=0
while IFS= read -r line; do
        printf '%s\n' "$line" | jq -e 'type == "object" and .type == "map" and .schema_version == 1' > /dev/null || bad=$((bad + 1))
done < "$out"
t_is "every line is one complete JSON map object" "$bad" 0
t_is "all 15 removed" "$(jq -s '[.[] | select(.result == "removed")] | length' "$out")" 15
t_is "no summary line (the run did not finish)" "$(jq -s '[.[] | select(.type == "summary")] | length' "$out")" 0
t_is "the mounted map has no line yet" "$(jq -s --arg m "$last" '[.[] | select(.name == $m)] | length' "$out")" 0
t_is "only the mounted map is left" "$(lab_maps | tr '\n' ' ')" "$last "
t_check_fails "$last is not suspended" lab_map_suspended "$last"
t_check "$last queues as before (the wait holds nothing changed)" lab_map_queueing "$last"
umount /mnt/last
t_done
