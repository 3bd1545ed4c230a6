/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "log.h"
#include "macro.h"
#include "options.h"
#include "pool.h"
#include "output.h"
#include "result.h"
#include "run.h"

int main(int argc, char *argv[])
{
        struct mpf_options o;

        /* before anything is opened: nothing of ours may land on a closed 0, 1 or 2 */
        if (stdio_fill_null() < 0)
                return MPF_EXIT_FAILED;
        if (mpf_parse_options(argc, argv, &o, stderr) < 0) {
                /* with --json, the caller parses stdout: it gets the usage error there too */
                if (o.json)
                        (void)mpf_print_json_error(stdout, o.json_lines, MPF_VERSION, MPF_EXIT_USAGE,
                                                   o.error);
                return MPF_EXIT_USAGE;
        }
        switch (o.action) {
        case MPF_ACTION_HELP:
                mpf_help(stdout);
                return MPF_EXIT_OK;
        case MPF_ACTION_VERSION:
                printf("mpath-flush %s\n", MPF_VERSION);
                return MPF_EXIT_OK;
        case MPF_ACTION_FLUSH:
        case MPF_ACTION_IF_PATHLESS:
        default:
                break;
        }
        log_set_max_level(o.verbose < 0 ? LOG_ERR : o.verbose == 0 ? LOG_INFO : LOG_DEBUG);
        log_open();
        if (o.verbose >= 2)
                log_set_timestamps(now_monotonic());
        /* the pool keeps lock fds of removed maps until its udev wait (doc/CONTRACT.md) */
        {
                int r = rlimit_nofile_raise(MPF_NOFILE_WANT);

                if (r < 0)
                        log_debug_errno(r, "Failed to raise RLIMIT_NOFILE: %m, ignoring");
        }
        /* Both end in run_real(), which drains our journal records (log_close()) with the held-back
         * signals still blocked, as they stay until we exit. The returns above send no record to
         * drain: they come before log_open(), and their usage error, help and version go to stderr
         * or stdout (under a unit, journald's stream, whose unit PID 1 names when it connects it). */
        return o.action == MPF_ACTION_IF_PATHLESS ? mpf_run_if_pathless(&o) : mpf_run(&o);
}
