/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "flush.h"
#include "options.h"
#include "wait.h"

struct mpf_run {
        struct mpf_map_result *maps;
        size_t n_maps;
        int exit_status;
        char *error;    /* environment (exit 6), usage (exit 2) or internal error, else NULL */
        bool udev_late; /* --all: udev had not finished the removals at the deadline */
};
void mpf_run_done(struct mpf_run *r);

/* Flush every MAP (or all multipath maps), one after another; the deadline covers the run. With
 * p->wait_busy, the maps that were busy are flushed again (wait.c) once the others are done. */
int mpf_run_all(const struct mpf_ops *ops, const struct mpf_flush_params *p, bool all, char *const *maps,
                size_t n_maps, struct mpf_run *ret);
/* Same, calling done(userdata, map) as each map has its final result (--json-lines). */
int mpf_run_all_notify(const struct mpf_ops *ops, const struct mpf_flush_params *p, bool all,
                       char *const *maps, size_t n_maps, mpf_map_done_fn done, void *userdata,
                       struct mpf_run *ret);

#ifndef MPF_VERSION
#define MPF_VERSION "0.0.0"
#endif

/* The program: flush what the options ask for with the given ops, print the results (JSON to
 * stdout with --json, a plan with --dry-run, one log line per map). Returns the exit status of
 * doc/CONTRACT.md. */
int mpf_run_with_ops(const struct mpf_options *o, const struct mpf_ops *ops);
/* Same, with the real device-mapper/udev/multipathd implementation. */
int mpf_run(const struct mpf_options *o);
/* --if-pathless (lastpath.c) with the real implementation. */
int mpf_run_if_pathless(const struct mpf_options *o);
