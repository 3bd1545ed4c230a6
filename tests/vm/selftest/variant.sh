#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: a variable given with --set reaches the scenario.
# mpf-lab: mode=fast timeout=60
. /usr/lib/mpf-lab/lib.sh
t_is "the --set variable reaches the guest" "${MPF_SELFTEST_V:-unset}" "it's a 'variant'"
t_done
