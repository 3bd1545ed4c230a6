#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The README's "see it work": a simulated two-path SAN with multipathd, two maps;
# mpath-flush removes the unused one and refuses the mounted one, naming who
# holds it.
# mpf-lab: mode=fast timeout=180
. /usr/lib/mpf-lab/lib.sh

say() { printf '\n======== %s\n' "$*"; }
lab_udev_start
lab_san 2
lab_mpathd_start
t_check "two two-path maps are created" lab_maps_create 2
set -- $(lab_maps)
free=$1 busy=$2

say "the SAN: two LUNs, each seen through two SCSI hosts"
multipath -ll
say "$busy gets a file system and is mounted on /mnt/data"
mkfs.ext4 -q -F "/dev/mapper/$busy" && mkdir -p /mnt/data && mount "/dev/mapper/$busy" /mnt/data
dmsetup ls --tree

say "mpath-flush --dry-run $free"
mpath-flush --dry-run "$free"
say "mpath-flush $free"
lab_run f mpath-flush "$free"
t_is "mpath-flush $free exits 0" "$f_rc" 0
t_check_fails "$free is gone" lab_map_exists "$free"
t_is "its path devices stay" "$(ls -d /sys/block/sd* | wc -l)" 4

say "mpath-flush --json $busy (mounted)"
lab_run b mpath-flush --json "$busy"
printf '%s\n' "$b_out" | jq . 2> /dev/null || printf '%s\n' "$b_out"
t_is "mpath-flush $busy exits 4 (busy)" "$b_rc" 4
t_like "and names the mount point" "$b_out" '/mnt/data'
t_check "$busy is still there" lab_map_exists "$busy"

say "what is left"
multipath -ll
t_done
