#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Profile (not in the suite): where `mpath-flush --all` spends its time at 64 maps with multipathd:
# per-step wall time summed over the maps (from the -vv log), and syscall counts (strace -f -c).
# mpf-lab: mode=fast timeout=900
. /usr/lib/mpf-lab/lib.sh
lab_setup 64 multipathd
t0=$(lab_ms)
mpath-flush --all -vv 2> "$MPF_LAB_OUT/all-vv.log"
t_diag "--all -vv over 64 maps: $(($(lab_ms) - t0)) ms"
lab_settle
# per step: sum over maps of (next step's start - this step's start)
sed -n 's/^mpath-flush: \[\([0-9.]*\) [0-9]*\] \([^:]*\): \([a-z-]*\): .*/\1 \2 \3/p' "$MPF_LAB_OUT/all-vv.log" |
        awk '{ t = $1 + 0; m = $2; s = $3
               if (m in last) { sum[step[m]] += t - last[m]; n[step[m]]++ }
               last[m] = t; step[m] = s }
             END { for (s in sum) printf "%-14s %8.1f ms over %d lines (%.2f ms each)\n", s, sum[s], n[s], sum[s] / n[s] }' |
        sort -k2 -n -r > "$MPF_LAB_OUT/steps.txt"
cat "$MPF_LAB_OUT/steps.txt"
t_check "maps re-created" lab_maps_create 64
strace -f -c -S time -o "$MPF_LAB_OUT/all-c.txt" mpath-flush --all
lab_settle
head -n 30 "$MPF_LAB_OUT/all-c.txt"
t_check "maps re-created" lab_maps_create 64
t0=$(lab_ms)
mpath-flush --all
t_diag "--all over 64 maps (no -vv, no strace): $(($(lab_ms) - t0)) ms"
t_ok "profiled"
t_done
