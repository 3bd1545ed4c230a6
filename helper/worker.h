/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The pool's real executor (pool.h): worker processes, forked as the pool needs them (at most
 * --jobs), each flushing one map at a time with flush.c's mpf_flush_map() and the parent's ops,
 * and sending back its result (and, with the shared udev cookie, the map's lock fds, which the
 * parent keeps until its udev wait). A worker keeps its write-back worker (syncer.h) from one map
 * to the next, so a run forks two processes per job, not per map.
 *
 * Processes, not threads:
 * - libdevmapper is not documented thread-safe: its control fd, log function, udev-sync setting
 *   and the list of node operations it stacks in every dm_task_run() and carries out in
 *   dm_udev_wait() are process globals. Threads would have to run each task under one lock, which
 *   serialises exactly the DM_DEV_REMOVE ioctls (del_gendisk, RCU grace periods) whose waits the
 *   pool exists to overlap. A process has its own copy of all of it.
 * - A udev cookie is a SysV semaphore: the parent makes it, each worker's remove joins it
 *   (dm_task_set_cookie with the nonzero value) and the parent waits for it once.
 * - A flock belongs to the open file description: a worker hands its map's lock fds to the parent
 *   (SCM_RIGHTS), and to the guardian as before, and exits; the lock lives on.
 * - Each worker has its own multipathd connection, write-back worker, udev monitor and log; a
 *   worker that crashes takes no other map with it, and the guardian puts its map back.
 * - The result comes back as a message (encoded below); --json and --json-lines are written by
 *   the parent alone, in its order.
 * A worker dies with the parent (PR_SET_PDEATHSIG): a SIGKILLed run leaves each map in flight to
 * the guardian, as a single flush does.
 */

#include <stdbool.h>

#include "pool.h"

struct mpf_device;
struct mpf_workers;

/* An executor forking workers that flush with ops, d's (mpf_device_ops); both outlive the workers.
 * d NULL: ops are not a device's (tests), no lock is handed on. */
int mpf_workers_new(struct mpf_device *d, const struct mpf_ops *ops, struct mpf_workers **ret);
/* Stops and reaps the workers (a busy one is killed: only after an internal error). NULL is fine. */
struct mpf_workers *mpf_workers_free(struct mpf_workers *x);
static inline void mpf_workers_freep(struct mpf_workers **x)
{
        *x = mpf_workers_free(*x);
}
void mpf_workers_exec(struct mpf_workers *x, struct mpf_pool_exec *ret);

/* A map's result as the message a worker sends, and back (not held_lock: fds travel apart). */
int mpf_result_encode(const struct mpf_map_result *r, char **ret);
int mpf_result_decode(const char *s, struct mpf_map_result *ret);
