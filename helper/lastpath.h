/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

#include "flush.h"
#include "policy.h"

/* --if-pathless: a path device of a map was removed; if it was the last one, do what the
 * administrator's flush_on_last_del says (policy.c). Runs under the map's lock and looks at the
 * map again until its path devices stop changing, so that a removal which arrives while we run
 * is not lost. */

/* Rounds of "look, act, look again" before we give up on a map whose paths keep changing. */
#define LASTPATH_MAX_ROUNDS 16

typedef enum MpfLastpathDo {
        MPF_LASTPATH_NOT_LAST,       /* a path device is left: nothing to do */
        MPF_LASTPATH_KEEP,           /* never: leave the map as it is */
        MPF_LASTPATH_FLUSH,          /* unused: flush; a map in use is refused and keeps queueing */
        MPF_LASTPATH_FAIL_AND_FLUSH, /* always: queueing off for good, then flush */
} MpfLastpathDo;

/* The decision table. */
MpfLastpathDo mpf_lastpath_decide(size_t n_paths, MpfLastDel policy);
const char *mpf_lastpath_do_to_string(MpfLastpathDo d);

struct mpf_lastpath_params {
        usec_t deadline;
        /* The policy for a WWID (policy.c's mpf_last_del_read; tests fake it). Asked only once a
         * map is found without path devices. */
        MpfLastDel (*policy)(const char *wwid, usec_t deadline, char **ret_source);
        /* The flush (flush.c's mpf_flush_map; tests fake it). Called with p->locked set. */
        int (*flush)(const struct mpf_ops *ops, const struct mpf_flush_params *p, const char *arg,
                     struct mpf_map_result *ret);
};

/* arg: a WWID (the map's DM UUID is mpath-WWID), or anything mpath-flush takes as MAP. Logs what
 * it did. Returns an exit status of doc/CONTRACT.md: 0 when the policy was carried out (the map
 * removed or absent, not its last path, kept by "never", kept in use by "unused", or in use with
 * queueing switched off by "always"); 1, 5 or 7 when an operation failed; -ENOMEM. */
int mpf_lastpath(const struct mpf_ops *ops, const struct mpf_lastpath_params *p, const char *arg);
