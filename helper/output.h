/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "run.h"

struct json_object;

/* The JSON document of doc/CONTRACT.md. Returns a new reference or NULL on OOM. */
struct json_object *mpf_run_to_json(const struct mpf_run *run, const char *version, bool dry_run);
/* Print it (pretty, one document) to f. */
int mpf_print_json(FILE *f, const struct mpf_run *run, const char *version, bool dry_run);

/* "busy at in-use: mpatha mounted on /mnt (pid 123)" */
char *mpf_map_result_line(const struct mpf_map_result *r);
/* Log one line per map (stderr, or the journal with MPATH_FLUSH_* fields). */
void mpf_log_results(const struct mpf_run *run);
/* --dry-run without --json: the plan, human readable. */
void mpf_print_plan(FILE *f, const struct mpf_run *run);
