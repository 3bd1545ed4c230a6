#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: every check passes, but the kernel reports a hung task. A
# writer is blocked on a suspended dm device past hung_task_timeout_secs, so the kernel's
# own hung-task detector logs "INFO: task dd:N blocked for more than 2 seconds"
# with a call trace (nothing is written to the kernel log from user space). The
# wait is an fsync waiting for write-back (direct I/O waits are exempt from the
# detector). The device is resumed afterwards, so the guest powers off normally.
# mpf-lab: mode=fast timeout=120
. /usr/lib/mpf-lab/lib.sh
modprobe dm-mod
echo 2 > /proc/sys/kernel/hung_task_timeout_secs
dmsetup create mpf-selftest-hang --table "0 2048 zero" && dmsetup mknodes mpf-selftest-hang
dmsetup suspend mpf-selftest-hang
dd if=/dev/zero of=/dev/mapper/mpf-selftest-hang bs=4096 count=1 conv=fsync status=none &
writer=$!
i=0
until dmesg | grep -q 'blocked for more than' || [ $i -ge 30 ]; do sleep 1; i=$((i + 1)); done
t_ok "a writer was left blocked for ${i}s"
dmsetup resume mpf-selftest-hang
wait "$writer"
dmsetup remove mpf-selftest-hang
t_done
