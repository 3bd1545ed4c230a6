/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Taking the path device locks (doc/CONTRACT.md) without opening a path device ourselves. Opening
 * a SCSI disk waits, in uninterruptible sleep and whatever the open flags, while its host is in
 * error recovery (sd_open: scsi_block_when_processing_errors), and the deadline cannot interrupt
 * that. So a short-lived worker, forked per map (its stdio on /dev/null, no fd of ours but its
 * socket, default signal dispositions), opens each path device and takes LOCK_EX on it (mpf_lock_paths),
 * then hands the descriptor back over its socket (SCM_RIGHTS) and closes its own copy. A flock belongs to
 * the open file description, so the lock comes with the descriptor: once the worker is done, we hold every
 * path lock ourselves, exactly as if we had taken them, and the worker exits. No process stays alive while
 * the locks are held; the pool hands them on like any other lock fd.
 *
 * A worker that has not finished by the deadline is killed and abandoned: what it handed back is
 * closed (the locks let go), and it holds nothing else of ours, so it can only be waiting in its
 * open; it dies as soon as that returns. If it is still there after PATHLOCK_EXIT_WAIT_USEC, it
 * is reported stuck, named with the device it was opening.
 */

#include <stddef.h>
#include <sys/types.h>

#include "deadline.h"

/* A worker killed at the deadline gets this long to die before it counts as stuck. */
#define PATHLOCK_EXIT_WAIT_USEC (100 * USEC_PER_MSEC)

/* A worker left behind at the deadline, stuck in the kernel. */
struct mpf_stuck {
        pid_t pid;    /* 0: none */
        char in[128]; /* what it was doing, e.g. "opening /dev/sdb" */
};

/* Lock paths[0..n) (in that order, each LOCK_EX) through a worker, waiting for it until the
 * deadline. Returns 0 with *ret_fds (*ret_n of them, malloc'ed; nodes that are gone are skipped)
 * holding the locks; -ETIMEDOUT, the worker killed, nothing locked, and *ret_stuck filled in if
 * it did not die; or the error of an open or a lock. No worker for n == 0. */
int mpf_pathlock_take(char *const *paths, size_t n, usec_t deadline, int **ret_fds, size_t *ret_n,
                      struct mpf_stuck *ret_stuck);
