/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "run.h"

struct json_object;

/* The "schema_version" of every JSON document and line: doc/mpath-flush.schema.json. Raised only
 * when a field changes meaning or goes away; new fields keep it. */
#define MPF_SCHEMA_VERSION 1

/* The JSON document of doc/CONTRACT.md. Returns a new reference or NULL on OOM. */
struct json_object *mpf_run_to_json(const struct mpf_run *run, const char *version, bool dry_run);
/* Print it (pretty, one document) to f. */
int mpf_print_json(FILE *f, const struct mpf_run *run, const char *version, bool dry_run);

/* --json-lines: one map's result on one line ("type": "map"), flushed at once. */
struct json_object *mpf_map_line_to_json(const struct mpf_map_result *r, bool dry_run);
int mpf_print_json_map_line(FILE *f, const struct mpf_map_result *r, bool dry_run);
/* --json-lines: the last line ("type": "summary"): exit status, counts per result, error. */
struct json_object *mpf_summary_line_to_json(const struct mpf_run *run, const char *version, bool dry_run);
int mpf_print_json_summary_line(FILE *f, const struct mpf_run *run, const char *version, bool dry_run);
/* A run that ended before any map (usage, environment or internal error) in the output format
 * asked for: a document, or a summary line with lines. */
int mpf_print_json_error(FILE *f, bool lines, const char *version, int exit_status, const char *error);
/* A copy of s in which every byte that does not start a valid UTF-8 sequence is replaced by
 * U+FFFD: JSON is UTF-8, names, mount points and command names are bytes. NULL on OOM. */
char *mpf_utf8_sanitize(const char *s);

/* "busy at in-use: mpatha mounted on /mnt (pid 123)" */
char *mpf_map_result_line(const struct mpf_map_result *r);
/* Log one line per map (stderr, or the journal with MPATH_FLUSH_* fields). */
void mpf_log_results(const struct mpf_run *run);
/* --dry-run without --json: the plan, human readable. */
void mpf_print_plan(FILE *f, const struct mpf_run *run);
