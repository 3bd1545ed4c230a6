#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Runner self-test: every check in the guest passes, but one of the JSON outputs kept for the
# host's schema check is invalid (an unknown result): the runner must fail the scenario.
# mpf-lab: mode=fast timeout=60
. /usr/lib/mpf-lab/lib.sh
printf '%s\n' '{"schema_version":1,"version":"0.1.0","maps":[],"exit_status":0}' > "$(lab_json_path valid)"
printf '%s\n' '{"schema_version":1,"type":"summary","version":"0.1.0","n_maps":1,"results":{"vanished":1},"exit_status":0}' \
        > "$(lab_json_path invalid lines)"
t_ok "the guest side passes"
t_done
