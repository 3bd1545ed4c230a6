/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "deadline.h"
#include "pathlock.h"

/*
 * Bounded write-back. fsync() on a multipath map can block in D state for as long as its paths
 * take to time out, and a thread stuck there would keep the whole process from exiting. So the
 * write-back runs in a worker process that holds no fd of ours but a socket, and /dev/null as its
 * stdin, stdout and stderr: for each map, a descriptor of the map opened again without O_EXCL is
 * passed to it (SCM_RIGHTS), and its answer is waited for until the deadline. A worker that misses
 * a deadline is killed and, if it does not die (stuck in the kernel), left behind: it then holds
 * an open of the map, but neither the caller's O_EXCL claim nor its output, so the caller returns
 * and the map can be claimed (mounted) again. The next map gets a new worker. One worker serves
 * every map of a run, so --all forks once, not once a map.
 *
 * The worker keeps the descriptor open after its write-back, until mpf_syncer_close(). So the
 * caller's own close of its claim is never the map's last close: the last close writes back (in
 * the kernel, blkdev_put) whatever another opener dirtied after our write-back, and can block as
 * long as an fsync. It happens in the worker, bounded like the write-back.
 */

/* How long a killed worker gets to die before it counts as stuck and is left behind. */
#define SYNCER_EXIT_WAIT_USEC (100 * USEC_PER_MSEC)
struct mpf_syncer;

/* No process is started until the first mpf_syncer_sync(). */
int mpf_syncer_new(struct mpf_syncer **ret);
/* Ends an idle worker (it exits when its socket closes) and reaps it; one that has not exited
 * within SYNCER_EXIT_WAIT_USEC is left behind. */
struct mpf_syncer *mpf_syncer_free(struct mpf_syncer *s);
/* In a process forked while s existed: the parent's worker is not ours to end or wait for; our
 * copy of its socket is closed (else it would never see its end of file). */
struct mpf_syncer *mpf_syncer_forked(struct mpf_syncer *s);
static inline void mpf_syncer_freep(struct mpf_syncer **s)
{
        *s = mpf_syncer_free(*s);
}

/* This process exits now: as mpf_syncer_free(), but the idle worker is not waited for. It holds
 * nothing of ours (its descriptor of a map is closed first, bounded as in mpf_syncer_free()) and
 * exits as soon as it reads the end of its socket; whoever reaps orphans reaps it. */
struct mpf_syncer *mpf_syncer_leave(struct mpf_syncer *s);

/* sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER), then fsync, in the worker, on a descriptor of
 * the same device as fd (fd itself, the caller's claim, never leaves the caller), which the worker
 * then keeps open until mpf_syncer_close() (mpf_syncer_holding()). Returns 0; 1
 * when all dirty data was written back but the device cache flush failed; -errno (-EIO) when data
 * could not be written back; -ETIMEDOUT at the deadline (the worker is killed, and left behind if
 * it is stuck in D state: then *ret_stuck is its pid, else 0); -EINTR when someone else killed
 * the worker. ret_stuck may be NULL. */
int mpf_syncer_sync(struct mpf_syncer *s, int fd, usec_t deadline, pid_t *ret_stuck);
/* The worker holds a descriptor of the map open (after mpf_syncer_sync(), until
 * mpf_syncer_close() or until the worker is discarded). */
bool mpf_syncer_holding(const struct mpf_syncer *s);
/* The worker closes the descriptor it holds (asked whenever a worker runs, whatever
 * mpf_syncer_holding() says); with write_back, it syncs it first as
 * mpf_syncer_sync() does. Its close may be the map's last, which writes back what others dirtied.
 * Waits until `until`; returns as mpf_syncer_sync() (-EINTR: the worker went away, and its
 * descriptor with it). 0 when it holds none, or no worker runs. ret_stuck may be NULL. */
int mpf_syncer_close(struct mpf_syncer *s, bool write_back, usec_t until, pid_t *ret_stuck);
/* The worker's pid, 0 if none runs (tests). */
pid_t mpf_syncer_pid(const struct mpf_syncer *s);

/* Lock paths[0..n) through the worker (pathlock.h), starting one if none runs; returns as
 * mpf_pathlock_take(). A worker that misses the deadline is killed and discarded (the next call
 * starts a new one); *ret_stuck names it if it did not die. */
int mpf_syncer_lock_paths(struct mpf_syncer *s, char *const *paths, size_t n, usec_t deadline, int **ret_fds,
                          size_t *ret_n, struct mpf_stuck *ret_stuck);

/* One-shot: a syncer for one fd. */
int mpf_fsync_bounded(int fd, usec_t deadline);
