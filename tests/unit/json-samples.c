/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Prints, through the helper's own output functions, a JSON document and --json-lines output for
 * runs that together have every result, step, blocker kind and optional field; the json-schema
 * test validates them against doc/mpath-flush.schema.json. */
#include <string.h>
#include <sys/sysmacros.h>

#include "macro.h"
#include "output.h"

#define must(x) must_at(x, __LINE__)
static void must_at(bool ok, int line)
{
        if (!ok && fprintf(stderr, "json-samples: line %d\n", line))
                abort();
}

static void sample_run(struct mpf_run *run, bool dry_run)
{
        *run = (struct mpf_run){.exit_status = MPF_EXIT_RESTORE_FAILED};
        run->n_maps = _MPF_RESULT_MAX;
        run->maps = calloc(run->n_maps, sizeof(*run->maps));
        must(run->maps);
        for (unsigned k = 0; k < _MPF_RESULT_MAX; k++) {
                struct mpf_map_result *m = &run->maps[k];
                char name[32];

                snprintf(name, sizeof(name), "mpath%c", 'a' + k);
                *m = (struct mpf_map_result){
                        .map = strdup(name),
                        .result = (MpfResult)k,
                        .step = (MpfStep)(k * 2 % _MPF_STEP_MAX),
                        .reason = strdup("a \"quoted\" \\ reason\n"),
                        .queueing_before = (int)k % 3 - 1,
                        .queueing_after = (int)(k + 1) % 3 - 1,
                        .elapsed_ms = 10 * k,
                        .waited_ms = 3 * k,
                        .attempts = 1 + k,
                };
                if (k % 2 == 0) { /* identity known */
                        m->name = strdup(name);
                        m->uuid = strdup("mpath-3600a0b80000000000000000000000001");
                        m->devt = makedev(254, k);
                        m->have_devt = true;
                }
                must(strv_extend(&m->partitions, "mpatha-part1") >= 0);
                if (m->result == MPF_RESULT_BUSY) {
                        must(mpf_blockers_add_mount(&m->blockers, "mpatha-part1", "/mnt/x y", 123) >= 0);
                        must(mpf_blockers_add_opener(&m->blockers, 456, "sleep", "mpatha") >= 0);
                        must(strv_extend(&m->blockers.holders, "dm-3") >= 0);
                        must(strv_extend(&m->blockers.swaps, "/dev/dm-4") >= 0);
                        m->blockers.unexplained_opens = 2;
                }
                if (dry_run)
                        must(strv_extend(&m->plan, "lock: map lock") >= 0);
        }
        run->udev_late = true;
}

int main(void)
{
        struct mpf_run run;

        for (int dry = 0; dry <= 1; dry++) {
                sample_run(&run, dry);
                must(mpf_print_json(stdout, &run, "0.1.0", dry) >= 0);
                for (size_t i = 0; i < run.n_maps; i++)
                        must(mpf_print_json_map_line(stdout, &run.maps[i], dry) >= 0);
                must(mpf_print_json_summary_line(stdout, &run, "0.1.0", dry) >= 0);
                mpf_run_done(&run);
        }
        for (int lines = 0; lines <= 1; lines++) {
                must(mpf_print_json_error(stdout, lines, "0.1.0", MPF_EXIT_USAGE, "usage: no MAP given") >=
                     0);
                must(mpf_print_json_error(stdout, lines, "0.1.0", MPF_EXIT_ENVIRONMENT, "must be root") >=
                     0);
        }
        return 0;
}
