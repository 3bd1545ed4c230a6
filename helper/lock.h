/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "deadline.h"

#define MPF_RUNDIR_ENV "MPATH_FLUSH_RUNDIR"
#define MPF_RUNDIR_DEFAULT "/run/mpath-flush"

/* Path device locks are tried with LOCK_NB (multipathd holds LOCK_SH|LOCK_NB only briefly). */
#define PATH_LOCK_BACKOFF_FIRST_USEC (1 * USEC_PER_MSEC)
#define PATH_LOCK_BACKOFF_MAX_USEC (100 * USEC_PER_MSEC)
/* After the first expiry the timer keeps firing this often, so a signal that lands just before
 * flock() blocks cannot leave us waiting past the deadline. */
#define LOCK_TIMER_REARM_USEC (10 * USEC_PER_MSEC)

struct mpf_lock {
        int map_fd;
        int *path_fds;
        size_t n_path_fds;
};

/* $MPATH_FLUSH_RUNDIR or /run/mpath-flush */
const char *mpf_rundir(void);

/* flock(op) on fd, waiting at most until deadline: -ETIMEDOUT then. A blocking flock()
 * interrupted by SIGALRM (handler without SA_RESTART), no polling. */
int flock_until(int fd, int op, usec_t deadline);

/* Step 1 of the lock protocol: LOCK_EX on <rundir>/lock/<uuid>, waited for until the deadline;
 * try_only: one LOCK_NB attempt, -EAGAIN when another flusher holds it. */
int mpf_lock_map(const char *rundir, const char *uuid, bool try_only, usec_t deadline, int *ret_fd);
/* Step 2: LOCK_EX|LOCK_NB on each path node (already in ascending dev_t order), retried with
 * backoff until the deadline. Nodes that no longer exist are skipped. */
int mpf_lock_paths(char *const *paths, size_t n, usec_t deadline, int **ret_fds, size_t *ret_n);

/* Releases what mpf_lock_map() and mpf_lock_paths() took: the path locks, then the map lock. */
void mpf_lock_release(struct mpf_lock *l);
