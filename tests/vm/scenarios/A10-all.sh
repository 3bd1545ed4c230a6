#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A10: --all with 16 maps, two of them mounted: 14 removed, 2 busy, exit 4.
# mpf-lab: mode=fast timeout=480
. /usr/lib/mpf-lab/lib.sh

lab_udev_light
lab_setup 16 multipathd
set -- $(lab_maps)
# scsi_debug LUNs share one store: one mkfs shows on every LUN; mount read-only.
mkfs.ext4 -q -F "/dev/mapper/$1"
mkdir -p /mnt/a /mnt/b
t_check "two maps are mounted" sh -c "mount -o ro,noload /dev/mapper/$1 /mnt/a && mount -o ro,noload /dev/mapper/$2 /mnt/b"
lab_run r mpath-flush --all --json --timeout 60
t_is "exit 4 (busy)" "$r_rc" 4
t_is "exit_status in the JSON" "$(printf '%s' "$r_out" | jq -r '.exit_status')" 4
t_is "16 maps reported" "$(printf '%s' "$r_out" | jq '.maps | length')" 16
t_is "14 removed" "$(printf '%s' "$r_out" | jq '[.maps[] | select(.result == "removed")] | length')" 14
t_is "2 busy" "$(printf '%s' "$r_out" | jq -r '[.maps[] | select(.result == "busy") | .name] | sort | join(" ")')" "$1 $2"
t_is "only the mounted maps are left" "$(lab_maps | tr '\n' ' ')" "$1 $2 "
t_diag "mpath-flush --all (14 of 16) took $r_ms ms"
umount /mnt/a /mnt/b
t_done
