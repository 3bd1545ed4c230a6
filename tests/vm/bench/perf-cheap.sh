#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Profile (not in the suite): where the CPU goes, system-wide (perf, cpu-clock at 1 kHz, call
# graphs), while `mpath-flush --all`, the concurrent floor (8 threads) and `--all --jobs 1` each
# tear down 64 cheap maps (null_blk paths, no multipathd), two rounds of the first two. Needs
# perf in the guest, which the suite's lab does not have:
#   MPF_LAB_EXTRA_PACKAGES=linux-perf tests/vm/run --build build --lab build/lab-perf \
#           tests/vm/bench/perf-cheap.sh
# Per run: the command's own times (dm-bench time) and the sample count; in the output directory,
# TAG-comm.txt (samples by process name), TAG-children.txt (by symbol, with callees) and
# TAG-mpf-children.txt (the same for mpath-flush's processes only).
# mpf-lab: mode=fast timeout=1500
. /usr/lib/mpf-lab/lib.sh
N=64
if ! command -v perf > /dev/null; then
        t_fail "perf is not in this lab: build it with MPF_LAB_EXTRA_PACKAGES=linux-perf (see the header)"
        t_done
        exit 0
fi
lab_udev_start
modprobe null_blk nr_devices=$((2 * N)) gb=1
udevadm settle -t 300
dm-bench cheap-maps /tmp/cheap.txt $N > /dev/null
t_is "$N cheap maps described" "$(grep -c . /tmp/cheap.txt)" $N

prof() {
        tag=$1
        shift
        t_check "$tag: $N maps made" dm-bench create /tmp/cheap.txt $N
        udevadm settle -t 300
        sleep 2
        rm -f /tmp/times
        perf record -q -a -g -e cpu-clock -F 1000 -o "/tmp/perf.$tag" -- \
                dm-bench time /tmp/times -- "$@" > /dev/null 2>&1
        lab_settle
        t_is "$tag: no map left" "$(lab_maps | wc -l)" 0
        rep() { perf report -i "/tmp/perf.$tag" --stdio "$@" 2> /dev/null; }
        rep --no-children -n --sort comm -g none | grep -v '^#' | grep . | head -n 30 > "$MPF_LAB_OUT/$tag-comm.txt"
        rep --children -n --sort sym -g none | grep -v '^#' | grep . | head -n 100 > "$MPF_LAB_OUT/$tag-children.txt"
        rep --children -n --comm mpath-flush,mpath-flush-w,mpath-flush-gd --sort sym -g none |
                grep -v '^#' | grep . | head -n 120 > "$MPF_LAB_OUT/$tag-mpf-children.txt"
        t_diag "$tag: $(rep | sed -n 's/^# \(Samples: .*\)/\1/p' | head -n 1); $(cat /tmp/times)"
}
prof all mpath-flush --all --timeout 600
prof floor dm-bench remove-all --threads 8
prof all2 mpath-flush --all --timeout 600
prof floor2 dm-bench remove-all --threads 8
prof jobs1 mpath-flush --all --jobs 1 --timeout 600
t_ok "profiled"
t_done
