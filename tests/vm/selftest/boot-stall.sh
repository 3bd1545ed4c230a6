#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: a scenario that would pass, run with MPF_LAB_BOOT_LIMIT=2, so that no
# boot reaches it in time: the runner stops the guest, boots it once more, and fails the
# scenario when the second boot stalls too. Run again with MPF_LAB_BOOT_LIMIT=2,180 (the
# second boot has time): it passes, the stalled first boot a diagnostic.
# mpf-lab: mode=fast timeout=60
. /usr/lib/mpf-lab/lib.sh
t_ok "the scenario started"
t_done
