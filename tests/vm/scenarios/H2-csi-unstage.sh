#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# H2: a CSI node's NodeUnstageVolume as drivers do it: record the path devices, unmount the
# staging mount, flush the multipath map, delete the SCSI path devices. Racing it, as on a real
# node: udev's blkid storm (change events on the map, whose rules run blkid) and a late close (a
# process that still has the device open for 2 s after the unmount). Played twice, on two LUNs:
#   1. `multipath -f` under csi-lib-iscsi's 5 s kill, in Trident's retry loop (4 retries 500 ms
#      apart); paths deleted only if the map went. What happens is recorded (t_diag and
#      csi-outcomes.txt), never a failed check: it is another tool's behaviour.
#   2. `mpath-flush --wait-busy --json-lines -t 20 WWID` (doc/INTEGRATION.md): must exit 0, the
#      map gone, then the path devices deleted.
# mpf-lab: mode=fast timeout=300
. /usr/lib/mpf-lab/lib.sh

lab_setup 2 multipathd
set -- $(lab_maps)
outcomes=$MPF_LAB_OUT/csi-outcomes.txt
mkfs.ext4 -q -F "/dev/mapper/$1"
lab_settle
mkdir -p /mnt/stage

# stage MAP: mount it as kubelet's staging mount, write through it
stage() {
        mount "/dev/mapper/$1" /mnt/stage && echo data > /mnt/stage/f && sync
}

# the races of an unstage: blkid storm (udev change events) for 3 s, and a late close 2 s out
races() {
        _dm=$(lab_map_dev "$1")
        (i=0; while [ $i -lt 30 ]; do udevadm trigger --action=change "/sys/block/$_dm" 2> /dev/null; sleep 0.1; i=$((i + 1)); done) &
        storm=$!
        (exec 3< "/dev/mapper/$1"; sleep 2) &
        closer=$!
        sleep 0.2 # the late closer has it open before the unmount
}

delete_paths() {
        for _p in $1; do echo 1 > "/sys/block/$_p/device/delete"; done
}

paths_left() {
        _n=0
        for _p in $1; do [ -e "/sys/block/$_p" ] && _n=$((_n + 1)); done
        echo $_n
}

# ---- 1. multipath -f, killed after 5 s (csi-lib-iscsi), 4 retries 500 ms apart (Trident)
m=$1
wwid=$(dmsetup info -c --noheadings -o uuid "$m" | sed 's/^mpath-//')
paths=$(lab_map_paths "$m" | tr '\n' ' ')
t_check "1: $m staged" stage "$m"
races "$m"
s=$(lab_ms)
umount /mnt/stage
attempt=0 rc=1 log=
while [ $attempt -lt 5 ]; do
        attempt=$((attempt + 1))
        a=$(lab_ms)
        timeout -s KILL 5 multipath -f "$m" > "$MPF_LAB_OUT/mf.out" 2>&1
        rc=$?
        log="$log attempt $attempt: exit $rc in $(($(lab_ms) - a)) ms ($(head -n 1 "$MPF_LAB_OUT/mf.out" | cut -c1-80));"
        [ $rc -eq 0 ] && break
        sleep 0.5
done
e=$(lab_ms)
wait $storm $closer 2> /dev/null
if lab_map_exists "$m"; then gone=no; else gone=yes; fi
if [ $gone = yes ]; then delete_paths "$paths"; fi
left=$(paths_left "$paths")
lab_map_exists "$m" && umount_state="map still there" || umount_state="map gone"
line="multipath -f (5 s kill, 4 retries 500 ms apart): last exit $rc after $attempt attempt(s), $((e - s)) ms; $umount_state; path devices left: $left of $(echo $paths | wc -w);$log"
t_diag "$line"
echo "$line" >> "$outcomes"
# leave nothing behind for part 2 (not part of the comparison)
if [ $gone = no ]; then
        lab_settle
        mpath-flush -t 20 "$m" > /dev/null 2>&1 || dmsetup remove "$m" 2> /dev/null
        delete_paths "$paths"
fi

# ---- 2. mpath-flush --wait-busy, the INTEGRATION.md sequence
m=$2
wwid=$(dmsetup info -c --noheadings -o uuid "$m" | sed 's/^mpath-//')
paths=$(lab_map_paths "$m" | tr '\n' ' ')
t_check "2: $m staged" stage "$m"
races "$m"
json=$(lab_json_path unstage lines)
s=$(lab_ms)
umount /mnt/stage
mpath-flush --wait-busy --json-lines -t 20 "$wwid" > "$json" 2> "$MPF_LAB_OUT/unstage.err"
rc=$?
e=$(lab_ms)
cat "$json" "$MPF_LAB_OUT/unstage.err"
[ $rc -eq 0 ] && delete_paths "$paths"
wait $storm $closer 2> /dev/null
left=$(paths_left "$paths")
waited=$(jq -r 'select(.type == "map") | .waited_ms' "$json")
attempts=$(jq -r 'select(.type == "map") | .attempts' "$json")
t_is "2: mpath-flush --wait-busy exits 0" "$rc" 0
t_is "2: result removed" "$(jq -r 'select(.type == "map") | .result' "$json")" removed
t_check_fails "2: the map is gone" lab_map_exists "$m"
t_is "2: every path device deleted" "$left" 0
t_is "2: the summary line says exit 0" "$(jq -r 'select(.type == "summary") | .exit_status' "$json")" 0
line="mpath-flush --wait-busy -t 20: exit $rc in $((e - s)) ms, $attempts attempt(s), waited $waited ms; map $(lab_map_exists "$m" && echo still there || echo gone); path devices left: $left of $(echo $paths | wc -w)"
t_diag "$line"
echo "$line" >> "$outcomes"
sleep 2
t_is "2: nothing re-created" "$(lab_maps | grep -c "^$m\$")" 0
t_done
