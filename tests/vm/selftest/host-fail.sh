#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: the guest passes; its host check (host-fail.host) reports a
# failing check and then crashes.
# mpf-lab: mode=fast timeout=60
. /usr/lib/mpf-lab/lib.sh
t_ok "the guest side passes"
t_done
