#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Baseline: plain `dmsetup remove` of an unused map removes it, keeps queueing
# state irrelevant and takes no lock; an open fd makes it fail with EBUSY.
# mpf-lab: mode=fast timeout=150
. /usr/lib/mpf-lab/lib.sh

lab_setup 2
set -- $(lab_maps)
exec 7< "/dev/mapper/$2"
lab_run d dmsetup remove "$2"
t_is "dmsetup remove of an open map exits 1" "$d_rc" 1
t_check "the open map is still there" lab_map_exists "$2"
exec 7<&-
lab_run d dmsetup remove "$1"
t_is "dmsetup remove of an unused map exits 0" "$d_rc" 0
t_check_fails "the unused map is gone" lab_map_exists "$1"
t_diag "dmsetup remove took $d_ms ms"
t_done
