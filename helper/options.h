/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "deadline.h"

enum {
        ARG_NO_UDEV_SYNC = 0x100,
        ARG_VERSION,
};

typedef enum MpfAction {
        MPF_ACTION_FLUSH,
        MPF_ACTION_HELP,
        MPF_ACTION_VERSION,
} MpfAction;

struct mpf_options {
        MpfAction action;
        bool all;
        bool deferred;
        bool dry_run;
        bool json;
        bool no_udev_sync;
        int verbose; /* -v count minus -q count, clamped to [-1, 2] */
        usec_t timeout;
        char **maps; /* borrowed from argv, NULL-terminated */
        size_t n_maps;
};

/* The option table, exported so tests can compare it with --help and the man page. */
extern const struct option mpf_long_options[];
extern const char mpf_short_options[];

/* Parses argv into ret. On a usage error returns -EINVAL and writes one line to err. */
int mpf_parse_options(int argc, char *argv[], struct mpf_options *ret, FILE *err);
void mpf_help(FILE *f);
