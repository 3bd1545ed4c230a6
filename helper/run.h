/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "flush.h"
#include "options.h"

#ifndef MPF_VERSION
#define MPF_VERSION "0.0.0"
#endif

/* The program: flush what the options ask for with the given ops, print the results (JSON to
 * stdout with --json, a plan with --dry-run, one log line per map). Returns the exit status of
 * doc/CONTRACT.md. */
int mpf_run_with_ops(const struct mpf_options *o, const struct mpf_ops *ops);
/* Same, with the real device-mapper/udev/multipathd implementation. */
int mpf_run(const struct mpf_options *o);
