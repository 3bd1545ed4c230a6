#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# A5: 32 MiB written through the page cache without sync, then flushed: the path
# device holds exactly what was written.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 1 multipathd
path=$(lab_map_paths "$map" | head -n 1)
head -c 32M /dev/urandom > /tmp/data
want=$(sha256sum < /tmp/data | cut -d' ' -f1)
t_check "32 MiB written through the page cache, no sync" dd if=/tmp/data of="/dev/mapper/$map" bs=1M status=none
lab_run r mpath-flush --json "$map"
t_is "exit 0" "$r_rc" 0
t_check_fails "the map is gone" lab_map_exists "$map"
got=$(dd if="/dev/$path" bs=1M count=32 iflag=direct status=none | sha256sum | cut -d' ' -f1)
t_is "the path device's checksum matches what was written" "$got" "$want"
t_done
