#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: the guest powers off before its results are saved (qemu
# exits 0, the output disk stays empty).
# mpf-lab: mode=fast timeout=60
. /usr/lib/mpf-lab/lib.sh
t_ok "a check that passes, never brought back"
echo o > /proc/sysrq-trigger
sleep 60
t_done
