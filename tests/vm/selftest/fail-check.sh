#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: one failing check (t_done then exits 1).
# mpf-lab: mode=fast timeout=60
. /usr/lib/mpf-lab/lib.sh
t_ok "a check that passes"
t_is "a check that fails" 1 2
t_done
