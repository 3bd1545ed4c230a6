#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: the scenario never returns.
# mpf-lab: mode=fast timeout=40
. /usr/lib/mpf-lab/lib.sh
t_ok "started"
sleep 100000
t_done
