/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "deadline.h"

enum {
        ARG_NO_UDEV_SYNC = 0x100,
        ARG_VERSION,
        ARG_JSON_LINES,
        ARG_IF_PATHLESS,
        ARG_JOBS,
};

typedef enum MpfAction {
        MPF_ACTION_FLUSH,
        MPF_ACTION_HELP,
        MPF_ACTION_VERSION,
        MPF_ACTION_IF_PATHLESS, /* --if-pathless WWID|MAP (lastpath.c) */
} MpfAction;

struct mpf_options {
        MpfAction action;
        bool all;
        bool deferred;
        bool dry_run;
        bool json;       /* --json or --json-lines */
        bool json_lines; /* one line per map as it finishes, then a summary line */
        bool wait_busy;
        bool no_udev_sync;
        int verbose; /* -v count minus -q count, clamped to [-1, 2] */
        usec_t timeout;
        unsigned jobs; /* --jobs; 0: the default (mpf_jobs_default()) */
        char **maps;   /* borrowed from argv, NULL-terminated */
        size_t n_maps;
        char error[256]; /* the usage error, when mpf_parse_options() fails */
};

/* The option table, exported so tests can compare it with --help and the man page. */
extern const struct option mpf_long_options[];
extern const char mpf_short_options[];

/* Parses argv into ret. On a usage error returns -EINVAL, writes one line to err, and fills in
 * ret only json, json_lines (from every argument, also those after the error) and error, so that
 * main() can answer with a JSON document. */
int mpf_parse_options(int argc, char *argv[], struct mpf_options *ret, FILE *err);
void mpf_help(FILE *f);
