/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "flush.h"
#include "options.h"

struct mpf_run {
        struct mpf_map_result *maps;
        size_t n_maps;
        int exit_status;
        char *error; /* environment error (exit 6), else NULL */
};
void mpf_run_done(struct mpf_run *r);

/* Flush every MAP (or all multipath maps), one after another; the deadline covers the run. */
int mpf_run_all(const struct mpf_ops *ops, const struct mpf_flush_params *p, bool all, char *const *maps,
                size_t n_maps, struct mpf_run *ret);

#ifndef MPF_VERSION
#define MPF_VERSION "0.0.0"
#endif

/* The program: flush what the options ask for with the given ops, print the results (JSON to
 * stdout with --json, a plan with --dry-run, one log line per map). Returns the exit status of
 * doc/CONTRACT.md. */
int mpf_run_with_ops(const struct mpf_options *o, const struct mpf_ops *ops);
/* Same, with the real device-mapper/udev/multipathd implementation. */
int mpf_run(const struct mpf_options *o);
