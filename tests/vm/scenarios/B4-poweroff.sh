#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# B4: poweroff with 8 maps, mpath-flush-queueing.service and
# mpath-flush-shutdown.service enabled: 2 maps on qemu disks mounted with files
# being written, 2 queueing maps without a usable path (both paths offline) with
# a reader blocked in I/O on each, 4 unused. The host (B4-poweroff.host) checks
# that the files written before poweroff are on the disks, that every map got a
# journal line at shutdown from mpath-flush or from lvm2's blkdeactivate (which
# runs first when blk-availability.service is active, and which the late flush
# does not race), that every unused map was removed, that mpath-flush@.service can be
# started during shutdown, and the poweroff time against the documented bound.
# The baseline is the same set-up with our units masked (Debian's
# multipath-tools, lvm2's blk-availability and systemd alone); it takes minutes,
# so it is not in the vm suite:
#   tests/vm/run --set B4_OURS=0 --name B4-baseline --timeout 900 tests/vm/scenarios/B4-poweroff.sh
# mpf-lab: mode=full timeout=480 disks=2 disksize=32
. /usr/lib/mpf-lab/lib.sh
B4_OURS=${B4_OURS:-1}

t_check "the system finished booting" systemctl is-system-running --wait
if [ "$B4_OURS" = 1 ]; then
        t_check "our shutdown units are enabled and started" \
                systemctl enable --now mpath-flush-queueing.service mpath-flush-shutdown.service
else
        t_check "our units are masked (Debian's multipath-tools alone)" \
                systemctl mask mpath-flush-queueing.service mpath-flush-shutdown.service mpath-flush-lastpath@.service
fi
lab_qemu_san
lab_san 6
t_check "eight maps are created" lab_maps_create 8
disk_map() {
        for _m in $(lab_maps); do
                [ "$(dmsetup info -c --noheadings -o uuid "$_m")" = "mpath-35000c500a000000$1" ] && echo "$_m"
        done
}
w0=$(disk_map 0) w1=$(disk_map 1)
others=$(lab_maps | grep -vx -e "$w0" -e "$w1")
set -- $others
p1=$1 p2=$2
lab_maps > "$MPF_LAB_OUT/b4-maps"
printf '%s\n' "$3" "$4" "$5" "$6" > "$MPF_LAB_OUT/b4-unused"
t_diag "mounted: $w0 $w1; pathless with a blocked reader: $p1 $p2; unused: $3 $4 $5 $6"

# Two mounted maps with writers (transient services, stopped at shutdown like
# any workload). Each file is one small write: a file that exists and is not
# the newest one is complete.
for k in 0 1; do
        m=$(disk_map $k)
        mkfs.ext4 -q "/dev/mapper/$m" && mkdir -p "/mnt/w$k" && mount "/dev/mapper/$m" "/mnt/w$k"
        systemd-run --quiet --unit="b4-writer-$k" /bin/sh -c \
                'i=0; while :; do echo "b4 file $i" > "$0/f$i"; i=$((i + 1)); sleep 0.02; done' "/mnt/w$k"
done

# Two maps without a usable path, queueing, each with a reader blocked in I/O.
for m in $p1 $p2; do
        for p in $(lab_map_paths "$m"); do lab_path_offline "$p"; done
done
for m in $p1 $p2; do
        systemd-run --quiet --unit="b4-reader-$m" dd if="/dev/mapper/$m" of=/dev/null bs=4096 count=1 iflag=direct
done
sleep 3
for m in $p1 $p2; do
        t_check "$m queues" lab_map_queueing "$m"
        pid=$(systemctl show -p MainPID --value "b4-reader-$m.service")
        t_like "the reader on $m is blocked in I/O (state D)" "$(ps -o stat= -p "$pid")" "D"
done
for k in 0 1; do
        t_check "writer $k is running" systemctl is-active "b4-writer-$k.service"
done

# mpath-flush@.service must be startable during shutdown (no
# Conflicts=shutdown.target): a service's ExecStop starts it for one unused map.
if [ "$B4_OURS" = 1 ]; then
        u=$(systemd-escape --template=mpath-flush@.service "$6")
        systemd-run --quiet --unit=b4-start-at-shutdown -p Type=oneshot -p RemainAfterExit=yes \
                -p ExecStop="/usr/bin/systemctl start $u" /bin/true
        echo "$u" > "$MPF_LAB_OUT/b4-start-at-shutdown"
fi

sleep 2
# What the host will look for: every file but the newest is complete.
for k in 0 1; do
        n=$(ls "/mnt/w$k" | sed -n 's/^f//p' | sort -n | tail -n 1)
        echo "$((n))" > "$MPF_LAB_OUT/b4-expect-$k"
        t_diag "disk $k: $n files complete before poweroff"
done
multipath -ll > "$MPF_LAB_OUT/b4-multipath-ll" 2>&1
echo "MPF-B4: poweroff requested" > /dev/kmsg
logger -t mpf-b4 "MPF-B4: poweroff requested"
t_done
