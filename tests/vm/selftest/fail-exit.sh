#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: every check passes but the script exits non-zero.
# mpf-lab: mode=fast timeout=60
. /usr/lib/mpf-lab/lib.sh
t_ok "a check that passes"
exit 3
